"""An Enphase Envoy / IQ Gateway simulator: the local (LAN) API over real HTTP(S).

Behaviour follows shared/reference/envoy-local-api.md. Two modes:

- live: the numbers come from solar_model, so a gateway and the cloud simulator built from the
  same SystemSpec agree (the eim production lifetime is the cloud's cumulative meter production,
  the inverters lifetime its cumulative micro production);
- replay: the files of a pyenphase fixture folder are served as captured (status and content
  type from `<name>_log.json`).

Authentication follows the firmware: JWT bearer or `sessionId` cookie (>= 7, HTTPS with a
self-signed certificate), HTTP Digest (R3.9 .. < 7), or none. The Enlighten login and the Entrez
token service run on a second, plain-HTTP server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape
from zoneinfo import ZoneInfo

import jwt
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from solar_pipeline.simulator import solar_model as model
from solar_pipeline.simulator.faults import ArmsMisbehaviour, FaultQueue
from solar_pipeline.simulator.solar_model import SystemSpec
from solar_pipeline.simulator.tls import self_signed_cert

DIGEST_REALM = "enphaseenergy.com"
DIGEST_USER = "envoy"
SESSION_COOKIE = "sessionId"
SESSION_TTL_S = 600
JWT_ISSUER = "Entrez"
JWT_ALGORITHM = "HS256"
SERVER_HEADER = "openresty/1.17.8.1"
PRODUCTION_EID = 704643328
NET_CONSUMPTION_EID = 704643584
# Channel eids as on real gateways (fixture 8.2.4345): three per meter, L1..L3.
_CHANNEL_EIDS = {PRODUCTION_EID: 1778385169, NET_CONSUMPTION_EID: 1778385425}
PCU_DEVICE_ID_BASE = 553648384
PCU_CHANNEL_EID_BASE = 1627390225
DEVICE_DATA_LIMIT = 50
DEVICE_DATA_MIN_FIRMWARE = (8, 2)
INVERTER_STEP = model.MICRO_STEP
INVERTER_STAGGER_S = 3
MAX_REPORT_WATTS = 290
VOLTAGE = 230.0
FREQUENCY = 50.0
# Reactive power as a share of active power: inverters run slightly leading, the house lagging.
PRODUCTION_Q_RATIO = -0.1
CONSUMPTION_Q_RATIO = 0.3
METERED_PART_NUMBER = "800-00654-r08"
STANDARD_PART_NUMBER = "800-00656-r06"

VALID_TOKEN_HTML = "<!DOCTYPE html><h2>Valid token.</h2>"
NOT_FOUND_JSON = '{ "error" : "404 - Not Found" }'
# The 7.x page (fixture 7.3.130_no_consumption/ivp_ensemble_power).
UNAUTHORIZED_HTML = """<html>
<head><title>401 Authorization Required</title></head>
<body>
<center><h1>401 Authorization Required</h1></center>
<hr><center>Redirecting to <a id='link' href=''></a></center>
<script>
const redirect_url = window.location.protocol + '//' + window.location.host + '/home';
function redirect() { window.location.href = redirect_url; }
window.onload = function() {
    const link = document.getElementById('link');
    link.href = redirect_url;
    link.text = redirect_url;
    setTimeout(redirect, 500);
}
</script>
</body>
</html>
"""
# The pre-7 Digest challenge body (fixture 4.10.35/production).
DIGEST_UNAUTHORIZED_HTML = "<html><body><h2>401 Unauthorized</h2></body></html>\n"
PAGE_NOT_FOUND_HTML = (
    "<html><head><title>Page Not Found</title></head>"
    "<body><h1>Page Not Found</h1><p>The page you requested was not found.</p></body></html>"
)
_REPLAY_NAME_CHARS = re.compile(r"[/?=& ]")


def parse_firmware(software: str) -> tuple[int, ...]:
    """`D8.2.4345` -> (8, 2, 4345): drop the leading letter(s) as pyenphase does."""
    numbers = re.findall(r"\d+", re.sub(r"^[A-Za-z]+", "", software.strip()))
    return tuple(int(n) for n in numbers) or (0,)


def fixture_name(path: str, query: str = "") -> str:
    """The pyenphase fixture file name of a request: `/production.json?details=1` ->
    `production.json_details_1` (leading `/` dropped, `/ ? = &` and spaces turned into `_`)."""
    raw = path.lstrip("/") + (f"?{query}" if query else "")
    return _REPLAY_NAME_CHARS.sub("_", raw)


def error_page(status: int, phrase: str | None = None) -> str:
    """An openresty-style HTML error page."""
    text = f"{status} {phrase or HTTPStatus(status).phrase}"
    return (
        f"<html>\n<head><title>{text}</title></head>\n<body>\n<center><h1>{text}</h1></center>\n"
        f"<hr><center>{SERVER_HEADER}</center>\n</body>\n</html>\n"
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _r3(x: float) -> float:
    return round(x + 0.0, 3)


# ---- stats and faults ----------------------------------------------------------------------


@dataclass
class EnvoyStats:
    check_jwt: int = 0  # calls of /auth/check_jwt (valid or not)
    sessions_issued: int = 0  # sessionId cookies handed out
    logins: int = 0  # successful Enlighten logins
    tokens_issued: int = 0  # JWTs issued by the Entrez /tokens endpoint (not mint_token)
    digest_challenges: int = 0  # 401s carrying a Digest challenge
    unauthorized: int = 0  # every 401 the simulator decided (replayed 401 files not counted)
    faults_served: int = 0
    outage_503: int = 0
    requests: Counter[str] = field(default_factory=Counter)  # gateway requests by path
    cloud_requests: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if not isinstance(v, Counter)}
        out["requests"] = dict(self.requests)
        out["cloud_requests"] = dict(self.cloud_requests)
        return out


@dataclass
class _Fault:
    remaining: int
    status: int | None
    body: str | None
    path_contains: str | None
    hang_s: float
    close: bool
    target: str


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        pass  # TLS handshake noise from clients that give up; stats are the record

    def version_string(self) -> str:
        return SERVER_HEADER


def _quiet_server(server: BaseWSGIServer) -> BaseWSGIServer:
    original = server.handle_error

    def handle_error(req: Any, client_address: Any) -> None:
        # Connections dropped on purpose (fail_next(close=True)) or by impatient clients.
        import sys

        if isinstance(sys.exc_info()[1], OSError):
            return
        original(req, client_address)

    server.handle_error = handle_error  # type: ignore[method-assign,assignment]
    return server


# ---- live numbers ----------------------------------------------------------------------------


@lru_cache(maxsize=16384)
def _day_flows(spec: SystemSpec, day: date) -> tuple[float, float, float, float, float]:
    """(micro Wh, meter production Wh, consumption Wh, grid import Wh, grid export Wh) of a day."""
    totals = model.daily_totals(spec, day)
    start, end = model.local_day_bounds(spec, day)
    imp, exp = _import_export(
        model.meter_production_intervals(spec, start, end),
        model.consumption_intervals(spec, start, end),
    )
    return totals["micro_wh"], totals["meter_wh"], totals["consumption_wh"], imp, exp


def _import_export(meter: list[dict], cons: list[dict]) -> tuple[float, float]:
    produced = {i["end_at"]: i["wh_del"] for i in meter}
    imp = exp = 0.0
    for i in cons:
        net = i["enwh"] - produced.get(i["end_at"], 0)
        if net >= 0:
            imp += net
        else:
            exp -= net
    return imp, exp


_ZERO5 = (0.0, 0.0, 0.0, 0.0, 0.0)


def _add(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _sub(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x - y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class Snapshot:
    """Everything the live endpoints report at one instant."""

    now: float
    # Microinverters (as of the last completed 5-minute interval, whole Wh).
    micro_lifetime: int
    micro_today: int
    micro_7d: int
    inverters_time: int  # last 5-min boundary, 0 when the last interval produced nothing
    inverters_w: int
    # CT meters, continuous (the current interval counted pro rata).
    production_lifetime: float
    production_today: float
    production_7d: float
    production_w: float
    consumption_lifetime: float
    consumption_today: float
    consumption_7d: float
    consumption_w: float
    import_lifetime: float
    export_lifetime: float

    @property
    def net_w(self) -> float:
        return self.consumption_w - self.production_w

    @property
    def net_lifetime(self) -> float:
        return self.consumption_lifetime - self.production_lifetime


class LiveModel:
    """Envoy counters derived from solar_model; lifetimes start at spec.operational_date."""

    def __init__(self, spec: SystemSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._cum: dict[date, tuple[float, ...]] = {}
        self.operational_start = model.local_day_bounds(spec, spec.operational_date)[0]

    def cum_before(self, day: date) -> tuple[float, ...]:
        """Sums of `_day_flows` over [operational_date, day)."""
        spec = self.spec
        if day <= spec.operational_date:
            return _ZERO5
        with self._lock:
            if day in self._cum:
                return self._cum[day]
            known = [d for d in self._cum if d < day]
            d = max(known) if known else spec.operational_date
            acc = self._cum.get(d, _ZERO5)
            while d < day:
                acc = _add(acc, _day_flows(spec, d))
                d += timedelta(days=1)
            self._cum[day] = acc
            return acc

    def _completed_today(self, day_start: int, t: int) -> tuple[float, ...]:
        spec = self.spec
        micro = model.micro_intervals(spec, day_start, t)
        meter = model.meter_production_intervals(spec, day_start, t)
        cons = model.consumption_intervals(spec, day_start, t)
        imp, exp = _import_export(meter, cons)
        return (
            sum(i["enwh"] for i in micro),
            sum(i["wh_del"] for i in meter),
            sum(i["enwh"] for i in cons),
            imp,
            exp,
        )

    def micro_power(self, end_at: int) -> int:
        """Power of the 5-minute interval ending at `end_at`."""
        found = model.micro_intervals(self.spec, end_at - INVERTER_STEP, end_at)
        return found[0]["powr"] if found else 0

    def micro_until(self, boundary: int) -> tuple[int, int, int, int]:
        """(lifetime, today, last 7 days, yesterday) micro Wh of intervals ended <= boundary."""
        spec = self.spec
        if boundary <= self.operational_start:
            return 0, 0, 0, 0
        day = model.local_date(spec, boundary)
        day_start = model.local_day_bounds(spec, day)[0]
        today = sum(i["enwh"] for i in model.micro_intervals(spec, day_start, boundary))
        before = self.cum_before(day)[0]
        week = before - self.cum_before(day - timedelta(days=6))[0] + today
        yesterday = (
            _day_flows(spec, day - timedelta(days=1))[0] if day > spec.operational_date else 0
        )
        return int(before + today), int(today), int(week), int(yesterday)

    def snapshot(self, now: float) -> Snapshot:
        spec = self.spec
        t = math.floor(now)
        boundary = t // INVERTER_STEP * INVERTER_STEP
        inv_w = self.micro_power(boundary)
        micro_life, micro_today, micro_7d, _ = self.micro_until(boundary)
        # The CTs measure the interval in progress.
        e5 = boundary + INVERTER_STEP
        production_w = model.METER_FACTOR * self.micro_power(e5)
        e15 = (t // model.METER_STEP + 1) * model.METER_STEP
        cons_now = model.consumption_intervals(spec, e15 - model.METER_STEP, e15)
        consumption_w = cons_now[0]["enwh"] * 3600 / model.METER_STEP if cons_now else 0.0
        life: tuple[float, ...]
        today: tuple[float, ...]
        week: tuple[float, ...]
        if now <= self.operational_start:
            life = today = week = _ZERO5
        else:
            day = model.local_date(spec, now)
            day_start = model.local_day_bounds(spec, day)[0]
            base = self.cum_before(day)
            done = self._completed_today(day_start, t)
            meter_now = model.meter_production_intervals(spec, e15 - model.METER_STEP, e15)
            m = meter_now[0]["wh_del"] if meter_now else 0
            c = cons_now[0]["enwh"] if cons_now else 0
            f = (now - (e15 - model.METER_STEP)) / model.METER_STEP
            frac = (0.0, f * m, f * c, f * max(c - m, 0), f * max(m - c, 0))
            in_today = model.interval_day(spec, e15) == day
            today = _add(done, frac) if in_today else done
            life = _add(_add(base, done), frac)
            week = _add(_sub(base, self.cum_before(day - timedelta(days=6))), today)
        return Snapshot(
            now=now,
            micro_lifetime=micro_life,
            micro_today=micro_today,
            micro_7d=micro_7d,
            inverters_time=boundary if inv_w > 0 else 0,
            inverters_w=inv_w,
            production_lifetime=life[1],
            production_today=today[1],
            production_7d=week[1],
            production_w=production_w,
            consumption_lifetime=life[2],
            consumption_today=today[2],
            consumption_7d=week[2],
            consumption_w=consumption_w,
            import_lifetime=life[3],
            export_lifetime=life[4],
        )


# ---- the simulator ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _ReplayFile:
    body: bytes
    status: int
    content_type: str
    www_authenticate: str | None


class EnvoySimulator(ArmsMisbehaviour):
    def __init__(
        self,
        spec: SystemSpec | None = None,
        *,
        serial: str = model.GATEWAY_SERIAL,
        firmware: str = "D8.2.4345",
        auth: str | None = None,
        tls: bool | None = None,
        replay: Path | None = None,
        outage: tuple[str, str] | None = ("23:00", "23:05"),
        clock: Callable[[], float] = time.time,
        jwt_lifetime_s: int = 365 * 86400,
        username: str = "owner@example.com",
        password: str = "sim-password",
        session_ttl_s: int = SESSION_TTL_S,
        cert_dir: Path | None = None,
    ) -> None:
        self.spec = spec or SystemSpec()
        self.replay = Path(replay) if replay is not None else None
        if self.replay is not None:
            serial, firmware = _read_info(self.replay / "info")
        self.serial, self.firmware = serial, firmware
        self.version = parse_firmware(firmware)
        if self.replay is not None:
            # A recorded gateway authenticates as its firmware did.
            auth = "jwt" if self.version >= (7,) else "none"
        elif auth is None:
            auth = "jwt" if self.version >= (7,) else "digest" if self.version >= (3, 9) else "none"
        if auth not in ("jwt", "digest", "none"):
            raise ValueError(f"auth must be 'jwt', 'digest' or 'none', not {auth!r}")
        self.auth = auth
        self.tls = (auth == "jwt") if tls is None else tls
        self.outage = outage
        self.clock = clock
        self.jwt_lifetime_s = jwt_lifetime_s
        self.username, self.password = username, password
        self.session_ttl_s = session_ttl_s
        self.digest_password = serial[-6:]
        self.stats = EnvoyStats()
        self.model = LiveModel(self.spec)
        self.base_url = self.enlighten_url = self.entrez_url = ""
        self.cert_path: Path | None = None
        self.key_path: Path | None = None
        self.cert_fingerprint: str | None = None
        self._cert_dir = Path(cert_dir) if cert_dir is not None else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sessions: dict[str, float] = {}  # sessionId -> issued at (clock)
        self._nonces: OrderedDict[str, None] = OrderedDict()
        self._enlighten_sessions: dict[str, str] = {}  # session_id -> email
        self._faults: FaultQueue[_Fault] = FaultQueue()
        ArmsMisbehaviour.__init__(self)
        self._servers: list[tuple[BaseWSGIServer, threading.Thread]] = []
        self.app = self._build_gateway_app()
        self.cloud_app = self._build_cloud_app()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._servers:
            return self.base_url
        self._stopping.clear()
        ssl_context = self._ssl_context() if self.tls else None
        gateway = self._serve(self.app, host, port, ssl_context, "envoy-sim")
        cloud = self._serve(self.cloud_app, host, 0, None, "enlighten-sim")
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        scheme = "https" if self.tls else "http"
        self.base_url = f"{scheme}://{shown}:{gateway.server_port}"
        self.enlighten_url = self.entrez_url = f"http://{shown}:{cloud.server_port}"
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()  # wakes requests hanging in fail_next(hang_s=...)
        servers, self._servers = self._servers, []
        for server, _ in servers:
            server.shutdown()
            server.server_close()
        for _, thread in servers:
            thread.join(timeout=5)

    def __enter__(self) -> EnvoySimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(
        self, app: Flask, host: str, port: int, ssl_context: ssl.SSLContext | None, name: str
    ) -> BaseWSGIServer:
        server = make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler, ssl_context=ssl_context
        )
        _quiet_server(server)
        # A short poll interval keeps stop() fast.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        thread.start()
        self._servers.append((server, thread))
        return server

    def _ssl_context(self) -> ssl.SSLContext:
        if self.cert_path is None or self.key_path is None:
            if self._cert_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="envoy-sim-tls-")
                self._cert_dir = Path(self._tmp.name)
            self.cert_path, self.key_path, self.cert_fingerprint = self_signed_cert(self._cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    # ---- test controls ---------------------------------------------------------------------

    def mint_token(
        self,
        lifetime_s: int | None = None,
        *,
        aud: str | None = None,
        enphase_user: str = "owner",
        username: str | None = None,
    ) -> str:
        """An owner JWT for this gateway, as Entrez would issue it (`aud` overrides the serial)."""
        now = int(self.clock())
        claims = {
            "aud": self.serial if aud is None else aud,
            "iss": JWT_ISSUER,
            "enphaseUser": enphase_user,
            "exp": now + (self.jwt_lifetime_s if lifetime_s is None else lifetime_s),
            "iat": now,
            "jti": str(uuid.uuid4()),
            "username": username or self.username,
        }
        return jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)

    def fail_next(
        self,
        count: int = 1,
        status: int | None = 503,
        body: str | None = None,
        path_contains: str | None = None,
        hang_s: float = 0,
        close: bool = False,
        target: str = "gateway",
    ) -> None:
        """Answer the next `count` matching requests with `status`/`body`.

        `hang_s` sleeps first (then answers, or serves normally when status is None);
        `close=True` drops the connection without an answer. `path_contains` matches the path
        plus query string. `target` is "gateway", "cloud" (Enlighten/Entrez) or "any".
        """
        if target not in ("gateway", "cloud", "any"):
            raise ValueError("target must be 'gateway', 'cloud' or 'any'")
        with self._lock:
            self._faults.add(_Fault(count, status, body, path_contains, hang_s, close, target))

    def clear_faults(self) -> None:
        super().clear_faults()
        self._faults.clear()

    def drop_sessions(self) -> None:
        """Forget every sessionId cookie (as a gateway reboot does)."""
        with self._lock:
            self._sessions.clear()

    # ---- request gate ----------------------------------------------------------------------

    def _take_fault(self, target: str) -> _Fault | None:
        where = request.full_path if request.query_string else request.path
        fault = self._faults.take(
            lambda f: (
                f.target in (target, "any") and (not f.path_contains or f.path_contains in where)
            )
        )
        if fault is not None:
            self.stats.faults_served += 1
        return fault

    def _apply_fault(self, fault: _Fault) -> Response | None:
        if fault.hang_s > 0:
            self._stopping.wait(fault.hang_s)
        if fault.close:
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return Response(b"", 500)  # never reaches the client
        if fault.status is None:
            return None
        if fault.body is None:
            return _html(error_page(fault.status), fault.status)
        kind = "application/json" if fault.body.lstrip()[:1] in ("{", "[") else "text/html"
        return Response(fault.body, fault.status, content_type=kind)

    def _in_outage(self, now: float) -> bool:
        if not self.outage:
            return False
        start, end = (_minutes(x) for x in self.outage)
        local = datetime.fromtimestamp(now, ZoneInfo(self.spec.timezone))
        minute = local.hour * 60 + local.minute
        if start <= end:
            return start <= minute < end
        return minute >= start or minute < end

    def _gateway_gate(self) -> Response | None:
        g.now = self.clock()
        with self._lock:
            self.stats.requests[request.path] += 1
        fault = self._take_fault("gateway")
        if fault is not None and (answer := self._apply_fault(fault)) is not None:
            return answer
        if self._in_outage(g.now):
            with self._lock:
                self.stats.outage_503 += 1
            return _html(error_page(503), 503)
        path = request.path
        if path == "/info" or (path == "/auth/check_jwt" and self.auth == "jwt"):
            return None
        if self.auth == "jwt" and not self._jwt_session_ok():
            return self._unauthorized()
        if self.auth == "digest" and not self._digest_ok():
            return self._digest_challenge()
        return None

    def _unauthorized(self) -> Response:
        with self._lock:
            self.stats.unauthorized += 1
        return _html(UNAUTHORIZED_HTML, 401)

    # ---- JWT / session ---------------------------------------------------------------------

    def _token_claims(self, token: str) -> dict[str, Any] | None:
        try:
            # Expiry is checked against the injectable clock, not PyJWT's wall clock.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                audience=self.serial,
                issuer=JWT_ISSUER,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        if claims.get("exp", 0) <= g.now or claims.get("enphaseUser") not in (
            "owner",
            "installer",
        ):
            return None
        return claims

    def _bearer(self) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _jwt_session_ok(self) -> bool:
        token = self._bearer()
        if token is not None and self._token_claims(token) is not None:
            return True
        sid = request.cookies.get(SESSION_COOKIE)
        if sid is None:
            return False
        with self._lock:
            issued = self._sessions.get(sid)
            if issued is not None and g.now - issued > self.session_ttl_s:
                del self._sessions[sid]
                issued = None
        return issued is not None

    def _check_jwt(self) -> Response:
        with self._lock:
            self.stats.check_jwt += 1
        token = self._bearer()
        if token is None or self._token_claims(token) is None:
            return self._unauthorized()
        sid = secrets.token_hex(16)
        with self._lock:
            # Expired sessions go, so the table stays small over long runs.
            self._sessions = {
                k: v for k, v in self._sessions.items() if g.now - v <= self.session_ttl_s
            }
            self._sessions[sid] = g.now
            self.stats.sessions_issued += 1
        response = _html(VALID_TOKEN_HTML, 200)
        response.headers.add("Set-Cookie", f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly")
        return response

    # ---- Digest ----------------------------------------------------------------------------

    def _digest_challenge(self) -> Response:
        nonce = base64.b64encode(secrets.token_bytes(20)).decode()
        with self._lock:
            self._nonces[nonce] = None
            while len(self._nonces) > 1000:
                self._nonces.popitem(last=False)
            self.stats.digest_challenges += 1
            self.stats.unauthorized += 1
        response = _html(DIGEST_UNAUTHORIZED_HTML, 401)
        response.headers["WWW-Authenticate"] = (
            f'Digest qop="auth", realm="{DIGEST_REALM}", nonce="{nonce}"'
        )
        return response

    def _digest_ok(self) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "digest":
            return False
        nonce, uri = auth.nonce or "", auth.uri or ""
        with self._lock:
            known = nonce in self._nonces
        if (
            not known
            or auth.username != DIGEST_USER
            or auth.realm != DIGEST_REALM
            or auth.qop != "auth"
            or not auth.nc
            or not auth.cnonce
            or urlsplit(uri).path != request.path
        ):
            return False
        ha1 = _md5(f"{DIGEST_USER}:{DIGEST_REALM}:{self.digest_password}")
        ha2 = _md5(f"{request.method}:{uri}")
        expected = _md5(f"{ha1}:{nonce}:{auth.nc}:{auth.cnonce}:auth:{ha2}")
        return secrets.compare_digest(expected, auth.response or "")

    # ---- gateway app -----------------------------------------------------------------------

    def _build_gateway_app(self) -> Flask:
        app = Flask(f"{__name__}.gateway")
        self.install_misbehaviour(app)
        app.before_request(self._gateway_gate)

        @app.errorhandler(HTTPException)
        def _http_err(err: HTTPException) -> Response:
            status = err.code or 500
            if status == 404:
                return _html(PAGE_NOT_FOUND_HTML, 404)
            return _html(error_page(status), status)

        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]

        @app.route("/", defaults={"path": ""}, methods=methods)
        @app.route("/<path:path>", methods=methods)
        def dispatch(path: str) -> Response:
            if request.path == "/auth/check_jwt" and self.auth == "jwt":
                return self._check_jwt()
            if self.replay is not None:
                return self._replay_response()
            if request.method not in ("GET", "HEAD"):
                return _html(error_page(405), 405)
            handler = self._live_routes().get(request.path)
            if handler is None:
                return _html(PAGE_NOT_FOUND_HTML, 404)
            return handler()

        return app

    def _live_routes(self) -> dict[str, Callable[[], Response]]:
        return {
            "/info": lambda: Response(self._info_xml(), 200, content_type="text/xml"),
            "/production.json": lambda: _json(self._production_json(details=_details())),
            "/production": lambda: _json(self._production_json(details=False)),
            "/api/v1/production": lambda: _json(self._api_v1_production()),
            "/api/v1/production/inverters": lambda: _json(self._api_v1_inverters()),
            "/ivp/pdm/device_data": self._device_data_response,
            "/ivp/meters": lambda: _json(self._meters()),
            "/ivp/meters/readings": lambda: _json(self._meter_readings()),
        }

    # ---- replay ----------------------------------------------------------------------------

    def _replay_response(self) -> Response:
        assert self.replay is not None
        query = request.query_string.decode("latin-1")
        name = fixture_name(request.path, query)
        found = self._replay_file(name)
        if found is None and name == "production.json_details_1":
            found = self._replay_file("production.json")
        if found is None:
            return Response(NOT_FOUND_JSON, 404, content_type="application/json")
        response = Response(found.body, found.status, content_type=found.content_type)
        if found.www_authenticate:
            response.headers["WWW-Authenticate"] = found.www_authenticate
        return response

    def _replay_file(self, name: str) -> _ReplayFile | None:
        assert self.replay is not None
        if not name or name.startswith(".") or name.endswith("_log.json") or name == "_readme":
            return None
        path = self.replay / name
        if not path.is_file():
            return None
        status, content_type, www_auth = 200, None, None
        log = self.replay / f"{name}_log.json"
        if log.is_file():
            meta = json.loads(log.read_text())
            status = int(meta.get("code", 200))
            headers = {k.lower(): v for k, v in (meta.get("headers") or {}).items()}
            content_type = headers.get("content-type")
            www_auth = headers.get("www-authenticate")
        if content_type is None:
            content_type = "text/xml" if name == "info" else "application/json"
        return _ReplayFile(path.read_bytes(), status, content_type, www_auth)

    # ---- live endpoints --------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        if "snapshot" not in g:
            g.snapshot = self.model.snapshot(g.now)
        return g.snapshot

    @property
    def _metered(self) -> bool:
        return self.spec.has_production_meter or self.spec.has_consumption_meter

    def _info_xml(self) -> str:
        v = self.version
        major, minor, patch = [*v, 0, 0, 0][:3]
        part = METERED_PART_NUMBER if self._metered else STANDARD_PART_NUMBER
        lines = [
            "<?xml version='1.0' encoding='UTF-8'?>",
            "<envoy_info>",
            f"  <time>{int(g.now)}</time>",
            "  <device>",
            f"    <sn>{xml_escape(self.serial)}</sn>",  # as any XML writer would
            f"    <pn>{part}</pn>",
            f"    <software>{self.firmware}</software>",
            "    <euaid>4c8675</euaid>",
            "    <seqnum>0</seqnum>",
            "    <apiver>1</apiver>",
        ]
        if v >= (4,):
            lines.append(f"    <imeter>{'true' if self._metered else 'false'}</imeter>")
        lines.append("  </device>")
        if v >= (7,):
            lines.append("  <web-tokens>true</web-tokens>")
        lines += [
            "  <package name='app'>",
            "    <pn>500-00002-r01</pn>",
            f"    <version>{major:02d}.{minor:02d}.{patch}</version>",
            "    <build>5f1d8e</build>",
            "  </package>",
            "  <build_info>",
            "    <build_time_gmt>1725031207</build_time_gmt>",
            f"    <build_id>envoy-sim-{self.firmware}</build_id>",
            "  </build_info>",
            "</envoy_info>",
        ]
        return "\n".join(lines) + "\n"

    def _production_json(self, details: bool) -> dict[str, Any]:
        s, spec = self._snapshot(), self.spec
        ts = int(s.now)
        production: list[dict[str, Any]] = [
            {
                "type": "inverters",
                "activeCount": spec.modules,
                "readingTime": s.inverters_time,
                "wNow": s.inverters_w if s.inverters_time else 0,
                "whLifetime": s.micro_lifetime,
            }
        ]
        body: dict[str, Any] = {"production": production}
        if self._metered:
            on = spec.has_production_meter
            production.append(
                _eim(
                    "production",
                    on,
                    ts,
                    s.production_w,
                    s.production_lifetime,
                    s.production_today,
                    s.production_7d,
                    PRODUCTION_Q_RATIO * s.production_w,
                    details,
                )
            )
            on = spec.has_consumption_meter
            q_cons = CONSUMPTION_Q_RATIO * s.consumption_w
            total = _eim(
                "total-consumption",
                on,
                ts,
                s.consumption_w,
                s.consumption_lifetime,
                s.consumption_today,
                s.consumption_7d,
                q_cons,
                details,
            )
            # Real gateways always report 0 for the net entry's today/seven-day values.
            net = _eim(
                "net-consumption",
                on,
                ts,
                s.net_w,
                s.net_lifetime,
                0,
                0,
                q_cons - PRODUCTION_Q_RATIO * s.production_w,
                details,
                vah_lifetime=total["vahLifetime"],
            )
            body["consumption"] = [total, net]
        body["storage"] = [
            {
                "type": "acb",
                "activeCount": 0,
                "readingTime": 0,
                "wNow": 0,
                "whNow": 0,
                "state": "idle",
            }
        ]
        return body

    def _api_v1_production(self) -> dict[str, int]:
        s = self._snapshot()
        if self.spec.has_production_meter:
            vals = (s.production_today, s.production_7d, s.production_lifetime, s.production_w)
        else:
            vals = (s.micro_today, s.micro_7d, s.micro_lifetime, s.inverters_w)
        today, week, life, watts = (round(x) for x in vals)
        return {
            "wattHoursToday": today,
            "wattHoursSevenDays": week,
            "wattHoursLifetime": life,
            "wattsNow": watts,
        }

    def inverter_serials(self) -> list[str]:
        """Serials as the cloud simulator's /devices lists them."""
        sid = self.spec.system_id % 10**6
        return [f"{sid:06d}{i:06d}" for i in range(1, self.spec.modules + 1)]

    def _inverter_reports(self) -> list[dict[str, Any]]:
        """Each inverter's last report: every 5 minutes, staggered a few seconds per unit.

        A report at boundary + offset carries the 5-minute interval that ended at the boundary.
        At night the last report is the last one that saw power.
        """
        now = math.floor(g.now)
        modules = self.spec.modules
        power_cache: dict[int, int] = {}

        def power(end_at: int) -> int:
            if end_at not in power_cache:
                power_cache[end_at] = self.model.micro_power(end_at)
            return power_cache[end_at]

        reports = []
        for i, serial in enumerate(self.inverter_serials()):
            offset = (i * INVERTER_STAGGER_S) % INVERTER_STEP
            boundary = (now - offset) // INVERTER_STEP * INVERTER_STEP
            found = boundary
            for back in range(86400 // INVERTER_STEP):
                candidate = boundary - back * INVERTER_STEP
                if power(candidate) > 0:
                    found = candidate
                    break
            share = power(found) / modules
            reports.append(
                {"serial": serial, "index": i, "boundary": found, "at": found + offset, "w": share}
            )
        return reports

    def _api_v1_inverters(self) -> list[dict[str, Any]]:
        return [
            {
                "serialNumber": r["serial"],
                "lastReportDate": r["at"],
                "devType": 1,
                "lastReportWatts": round(r["w"]),
                "maxReportWatts": MAX_REPORT_WATTS,
            }
            for r in self._inverter_reports()
        ]

    def _device_data_response(self) -> Response:
        if self.version[:2] < DEVICE_DATA_MIN_FIRMWARE:
            return Response(NOT_FOUND_JSON, 404, content_type="application/json")
        return _json(self._device_data())

    def _device_data(self) -> dict[str, Any]:
        modules = self.spec.modules
        created = self.model.operational_start
        totals: dict[int, tuple[int, int, int, int]] = {}
        body: dict[str, Any] = {}
        for r in self._inverter_reports():
            if r["boundary"] not in totals:
                totals[r["boundary"]] = self.model.micro_until(r["boundary"])
            life, today, week, yesterday = totals[r["boundary"]]
            watts = round(r["w"])
            chan_eid = PCU_CHANNEL_EID_BASE + 256 * r["index"]
            dc_mv = 32000 + 10 * r["index"] if watts > 0 else 0
            body[str(PCU_DEVICE_ID_BASE + 256 * r["index"])] = {
                "devName": "pcu",
                "sn": r["serial"],
                "active": True,
                "modGone": False,
                "channels": [
                    {
                        "chanEid": chan_eid,
                        "created": r["at"],
                        "wattHours": {
                            "today": round(today / modules),
                            "yesterday": round(yesterday / modules),
                            "week": round(week / modules),
                        },
                        "watts": {"now": watts, "nowUsed": 0, "max": MAX_REPORT_WATTS},
                        "lastReading": {
                            "eid": chan_eid,
                            "interval_type": 0,
                            "endDate": r["at"],
                            "duration": INVERTER_STEP,
                            "flags": 0,
                            "flags_hex": "0x0000000000000000",
                            "joulesProduced": round(r["w"] * INVERTER_STEP),
                            "acVoltageINmV": int(VOLTAGE * 1000) if watts > 0 else 0,
                            "acFrequencyINmHz": int(FREQUENCY * 1000) if watts > 0 else 0,
                            "dcVoltageINmV": dc_mv,
                            "dcCurrentINmA": round(r["w"] / (dc_mv / 1000) * 1000 / 0.96)
                            if dc_mv
                            else 0,
                            "channelTemp": 20 + round(r["w"] / 20),
                            "pwrConvErrSecs": 0,
                            "pwrConvMaxErrCycles": 0,
                            "joulesUsed": 0,
                            "leadingVArs": 0,
                            "laggingVArs": 0,
                            "acCurrentInmA": round(r["w"] / VOLTAGE * 1000),
                            "l1NAcVoltageInmV": 0,
                            "l2NAcVoltageInmV": 0,
                            "l3NAcVoltageInmV": 0,
                            "rssi": 110,
                            "issi": 68,
                        },
                        "lifetime": {
                            "createdTime": created,
                            "duration": max(0, r["at"] - created),
                            "joulesProduced": round(life * 3600 / modules),
                        },
                    }
                ],
            }
        body["deviceCount"] = modules
        body["deviceDataLimit"] = DEVICE_DATA_LIMIT
        return body

    def _meters(self) -> list[dict[str, Any]]:
        if not self._metered:
            return []

        def meter(eid: int, kind: str, on: bool) -> dict[str, Any]:
            return {
                "eid": eid,
                "state": "enabled" if on else "disabled",
                "measurementType": kind,
                "phaseMode": "single",
                "phaseCount": 1,
                "meteringStatus": "normal",
                "statusFlags": [],
            }

        return [
            meter(PRODUCTION_EID, "production", self.spec.has_production_meter),
            meter(NET_CONSUMPTION_EID, "net-consumption", self.spec.has_consumption_meter),
        ]

    def _meter_readings(self) -> list[dict[str, Any]]:
        if not self._metered:
            return []
        s, ts = self._snapshot(), int(g.now)
        q_prod = PRODUCTION_Q_RATIO * s.production_w
        q_net = CONSUMPTION_Q_RATIO * s.consumption_w - q_prod
        prod = (s.production_lifetime, 0.0, s.production_w, q_prod)
        net = (s.import_lifetime, s.export_lifetime, s.net_w, q_net)
        zeros = (0.0, 0.0, 0.0, 0.0)
        return [
            _reading(PRODUCTION_EID, ts, *(prod if self.spec.has_production_meter else zeros)),
            _reading(NET_CONSUMPTION_EID, ts, *(net if self.spec.has_consumption_meter else zeros)),
        ]

    # ---- Enlighten / Entrez ----------------------------------------------------------------

    def _cloud_gate(self) -> Response | None:
        with self._lock:
            self.stats.cloud_requests[request.path] += 1
        fault = self._take_fault("cloud")
        if fault is not None and (answer := self._apply_fault(fault)) is not None:
            return answer
        return None

    def _build_cloud_app(self) -> Flask:
        app = Flask(f"{__name__}.enlighten")
        self.install_misbehaviour(app)
        app.before_request(self._cloud_gate)

        @app.errorhandler(HTTPException)
        def _http_err(err: HTTPException) -> Response:
            status = err.code or 500
            return _json({"message": HTTPStatus(status).phrase}, status)

        @app.post("/login/login.json")
        def login() -> Response:
            email = request.form.get("user[email]", "")
            given = request.form.get("user[password]", "")
            if email != self.username or not secrets.compare_digest(given, self.password):
                return _json({"message": "Invalid email or password"}, 401)
            session_id = secrets.token_hex(16)
            with self._lock:
                self._enlighten_sessions[session_id] = email
                self.stats.logins += 1
            return _json(
                {
                    "message": "success",
                    "session_id": session_id,
                    "manager_token": secrets.token_urlsafe(24),
                    "is_consumer": True,
                    "system_id": str(self.spec.system_id),
                    "redirect_url": "",
                }
            )

        @app.post("/tokens")
        def tokens() -> Response:
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                body = request.form.to_dict()
            session_id = str(body.get("session_id", ""))
            with self._lock:
                email = self._enlighten_sessions.get(session_id)
            if email is None or body.get("username", email) != email:
                return _json({"message": "Unauthorized", "details": "Invalid session"}, 401)
            if str(body.get("serial_num", "")) != self.serial:
                return _json(
                    {"message": "Not Found", "details": "Envoy not found for this user"}, 404
                )
            token = self.mint_token(username=email)
            with self._lock:
                self.stats.tokens_issued += 1
            return Response(token, 200, content_type="text/plain")

        return app


# ---- helpers ---------------------------------------------------------------------------------


def _details() -> bool:
    return request.args.get("details", "0") not in ("", "0")


def _minutes(hhmm: str) -> int:
    hour, _, minute = hhmm.partition(":")
    return int(hour) * 60 + int(minute or 0)


def _read_info(path: Path) -> tuple[str, str]:
    root = ET.fromstring(path.read_bytes())
    serial = (root.findtext("device/sn") or "").strip()
    software = (root.findtext("device/software") or "").strip()
    if not serial or not software:
        raise ValueError(f"{path}: no device/sn or device/software")
    return serial, software


def _html(body: str, status: int) -> Response:
    return Response(body, status, content_type="text/html")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _eim(
    measurement: str,
    on: bool,
    reading_time: int,
    watts: float,
    lifetime: float,
    today: float,
    seven: float,
    react: float,
    details: bool,
    vah_lifetime: float | None = None,
) -> dict[str, Any]:
    """A production.json `eim` entry; a CT that is not installed reports activeCount 0 and 0s."""
    if not on:
        watts = lifetime = today = seven = react = 0.0
        vah_lifetime = 0.0 if vah_lifetime is not None else None
    apparent = math.hypot(watts, react)
    ratio = apparent / abs(watts) if watts else 1.0
    values = {
        "wNow": _r3(watts),
        "whLifetime": _r3(lifetime),
        "varhLeadLifetime": 0.0,
        "varhLagLifetime": 0.0,
        "vahLifetime": _r3(abs(lifetime) * 1.02) if vah_lifetime is None else vah_lifetime,
        "rmsCurrent": _r3(apparent / VOLTAGE),
        "rmsVoltage": VOLTAGE if on else 0.0,
        "reactPwr": _r3(react),
        "apprntPwr": _r3(apparent),
        "pwrFactor": round(watts / apparent, 2) if apparent else 0.0,
        "whToday": _r3(today),
        "whLastSevenDays": _r3(seven),
        "vahToday": _r3(abs(today) * ratio),
        "varhLeadToday": 0.0,
        "varhLagToday": 0.0,
    }
    entry: dict[str, Any] = {
        "type": "eim",
        "activeCount": 1 if on else 0,
        "measurementType": measurement,
        "readingTime": reading_time,
        **values,
    }
    if details:
        entry["lines"] = [dict(values)]
    return entry


def _reading(
    eid: int, ts: int, delivered: float, received: float, power: float, react: float
) -> dict[str, Any]:
    """An /ivp/meters/readings entry: L1 carries the values, L2 and L3 are idle."""
    apparent = math.hypot(power, react)
    values = {
        "timestamp": ts,
        "actEnergyDlvd": _r3(delivered),
        "actEnergyRcvd": _r3(received),
        "apparentEnergy": _r3((delivered + received) * 1.02),
        "reactEnergyLagg": 0.0,
        "reactEnergyLead": 0.0,
        "instantaneousDemand": _r3(power),
        "activePower": _r3(power),
        "apparentPower": _r3(apparent),
        "reactivePower": _r3(react),
        "pwrFactor": _r3(power / apparent) if apparent else 0.0,
        "voltage": VOLTAGE if apparent or delivered else 0.0,
        "current": _r3(apparent / VOLTAGE),
        "freq": FREQUENCY,
    }
    idle = {k: (ts if k == "timestamp" else FREQUENCY if k == "freq" else 0.0) for k in values}
    base = _CHANNEL_EIDS[eid]
    channels = [{"eid": base, **values}] + [{"eid": base + n, **idle} for n in (1, 2)]
    return {"eid": eid, **values, "channels": channels}
