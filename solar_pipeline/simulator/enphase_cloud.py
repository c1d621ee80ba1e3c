"""An Enphase cloud API v4 simulator: OAuth, quotas, faults and site telemetry over real HTTP.

Behaviour follows shared/reference/enphase-cloud-api-v4.md; where Enphase is silent (old refresh
tokens, token-endpoint errors) the simulator picks the documented likely shape and makes the
uncertain part switchable (strict/lenient refresh rotation).
"""

from __future__ import annotations

import base64
import secrets
import string
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlparse

import jwt
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from solar_pipeline.simulator import solar_model as model
from solar_pipeline.simulator.enphase_alarms import AlarmBoard, Incident, WindowMatch
from solar_pipeline.simulator.faults import ArmsMisbehaviour, FaultQueue
from solar_pipeline.simulator.server import WsgiSimulator
from solar_pipeline.simulator.solar_model import SystemSpec

GRANULARITY_SECONDS = {"5mins": 300, "15mins": 900, "day": 86400, "week": 604800}
TWO_YEARS = 2 * 365 * 86400
MAX_EVENT_WINDOW = 7 * 86400
# events/alarms: "start_time ... cannot be older than 9 months from the current time" (reference
# §3.13, quoting the spec); 9 months of 30.44 days.
EVENT_LOOKBACK = 274 * 86400
ENL_UID = "3265587"
APP_ID = "1409625562651"
PASSWORD_LAST_CHANGED = "1743069079"
QUEUE_FULL_HTML = (
    "<!DOCTYPE html><html><head><title>Server busy</title></head><body>"
    "<h2>This website is under heavy load (queue full)</h2>"
    "<p>We're sorry, too many people are accessing this website at the same time. "
    "We're working on this problem. Please try again later.</p></body></html>"
)
_STD_METHODS = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}
_CODE_ALPHABET = string.ascii_letters + string.digits
# Pinned because Python 3.13 renamed some HTTPStatus phrases (422 became "Unprocessable Content").
_MESSAGES = {
    401: "Not Authorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
}


@dataclass
class SimStats:
    token_refreshes: int = 0
    code_exchanges: int = 0
    rejected_refreshes: int = 0
    throttled: int = 0
    faults_served: int = 0
    data_requests: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_refreshes": self.token_refreshes,
            "code_exchanges": self.code_exchanges,
            "rejected_refreshes": self.rejected_refreshes,
            "throttled": self.throttled,
            "faults_served": self.faults_served,
            "data_requests": dict(self.data_requests),
        }


@dataclass
class _Fault:
    remaining: int
    status: int = 503
    html: bool = False
    path_contains: str | None = None
    oauth: bool = False


class _ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _api_error(status: int, details: str) -> _ApiError:
    message = _MESSAGES.get(status) or HTTPStatus(status).phrase
    return _ApiError(status, {"message": message, "details": details, "code": status})


def _oauth_error(status: int, error: str, description: str) -> _ApiError:
    return _ApiError(status, {"error": error, "error_description": description})


def _month_bounds(now: float) -> tuple[int, int]:
    t = datetime.fromtimestamp(now, UTC)
    start = datetime(t.year, t.month, 1, tzinfo=UTC)
    end = datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()), int(end.timestamp())


def _parse_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _api_error(422, f"Failed to parse date {raw!r}") from None


def _parse_epoch(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _api_error(422, f"Failed to parse date {name}={raw!r}") from None


class EnphaseCloudSimulator(ArmsMisbehaviour, WsgiSimulator):
    thread_name = "enphase-cloud-sim"

    def __init__(
        self,
        systems: list[SystemSpec] | None = None,
        *,
        api_key: str = "sim-api-key",
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",
        per_minute: int = 10,
        per_month: int = 1000,
        strict: bool = True,
        access_ttl: int = 86400,
        refresh_ttl: int = 2629746,
        data_lag: int = 900,
        clock: Callable[[], float] = time.time,
        window_match: WindowMatch = "start",
    ) -> None:
        self.systems = {s.system_id: s for s in (systems or [SystemSpec()])}
        self.api_key, self.client_id, self.client_secret = api_key, client_id, client_secret
        self.per_minute, self.per_month, self.strict = per_minute, per_month, strict
        self.access_ttl, self.refresh_ttl, self.data_lag = access_ttl, refresh_ttl, data_lag
        self.clock = clock
        self.stats = SimStats()
        self.base_url = ""
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._codes: dict[str, str | None] = {}  # code -> redirect_uri it was issued for
        self._refresh_state: dict[str, str] = {}  # jti -> "live" | "used" | "revoked"
        self._live_access: set[str] = set()
        self._expired_access: set[str] = set()
        self._minute_used: dict[int, int] = {}
        self._month_used: dict[int, int] = {}
        self._faults: FaultQueue[_Fault] = FaultQueue()
        ArmsMisbehaviour.__init__(self)
        self._slow: list[list[float]] = []  # [seconds, remaining]
        self.alarm_board = AlarmBoard(window_match)
        # (telemetry name or "energy_lifetime", end_at or ISO day) -> the values served there
        self._corrupt: dict[tuple[str, int | str], list[int | float]] = {}
        self.app = self._build_app()

    # ---- test controls ---------------------------------------------------------------------

    def mint_refresh_token(self) -> str:
        with self._lock:
            return self._issue_pair()["refresh_token"]

    def issue_code(self, redirect_uri: str | None = None) -> str:
        with self._lock:
            return self._new_code(redirect_uri)

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        html: bool = False,
        path_contains: str | None = None,
        oauth: bool = False,
    ) -> None:
        with self._lock:
            self._faults.add(_Fault(count, status, html, path_contains, oauth))

    def slow_next(self, seconds: float, count: int = 1) -> None:
        with self._lock:
            self._slow.append([seconds, count])

    def clear_slow(self) -> None:
        """Answer at full speed again (what slow_next armed and no request used yet)."""
        with self._lock:
            self._slow.clear()

    def clear_faults(self) -> None:
        """Disarm whatever fail_next, misbehave_next and slow_next armed and no request used
        (a run that stopped early leaves the rest armed)."""
        super().clear_faults()
        self._faults.clear()
        self.clear_slow()

    def corrupt_interval(self, telemetry: str, end_at: int, *values: float) -> None:
        """Serve the `telemetry` interval (production_micro, production_meter,
        consumption_meter) ending at `end_at` once per value, with that energy: one negative or
        absurd value, or two different ones (a duplicated interval)."""
        with self._lock:
            self._corrupt[(telemetry, int(end_at))] = [_number(v) for v in values]

    def corrupt_day(self, day: date, wh: float) -> None:
        """Serve `wh` as every energy_lifetime series' value of `day`."""
        with self._lock:
            self._corrupt[("energy_lifetime", day.isoformat())] = [_number(wh)]

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            for jti in self._refresh_state:
                self._refresh_state[jti] = "revoked"

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._expired_access |= self._live_access
            self._live_access = set()

    def set_month_used(self, n: int) -> None:
        with self._lock:
            self._month_used = {_month_bounds(self.clock())[0]: n}

    def raise_alarm(
        self,
        start: int,
        *,
        system_id: int | None = None,
        event_type_id: int = 8,
        serial_number: str | None = None,
        severity: int = 2,
    ) -> str:
        """Open a stateful event at `start` (epoch s) and its alarm, open until clear_alarm.

        Defaults follow the reference's open_alarms example (type 8, severity 2 ERROR) on the
        system's first microinverter. Returns the alarm id.
        """
        sid = system_id if system_id is not None else next(iter(self.systems))
        serial = serial_number or f"{sid % 10**6:06d}{1:06d}"
        incident = Incident(sid, event_type_id, serial, severity, int(start))
        return self.alarm_board.raise_alarm(incident)

    def clear_alarm(self, alarm_id: str, at: float | None = None) -> None:
        """Close the alarm (and its event) at `at` (default: now)."""
        self.alarm_board.clear_alarm(alarm_id, int(self.clock() if at is None else at))

    # ---- tokens ----------------------------------------------------------------------------

    def _new_code(self, redirect_uri: str | None) -> str:
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))
        self._codes[code] = redirect_uri
        return code

    def _issue_pair(self) -> dict[str, Any]:
        """Mint an access/refresh pair; caller holds the lock."""
        now = int(self.clock())
        access_jti, refresh_jti = str(uuid.uuid4()), str(uuid.uuid4())
        base = {"iat": now, "client_id": self.client_id, "enl_uid": ENL_UID}
        access = {**base, "exp": now + self.access_ttl, "jti": access_jti}
        # As in real tokens, `ati` ties the refresh token to the access token minted with it.
        refresh = {**base, "exp": now + self.refresh_ttl, "jti": refresh_jti, "ati": access_jti}
        self._live_access.add(access_jti)
        self._refresh_state[refresh_jti] = "live"
        return {
            "access_token": jwt.encode(access, self._secret, algorithm="HS256"),
            "token_type": "bearer",
            "refresh_token": jwt.encode(refresh, self._secret, algorithm="HS256"),
            "expires_in": self.access_ttl - 1,
            "scope": "read write",
            "enl_uid": ENL_UID,
            "enl_cid": "",
            "enl_password_last_changed": PASSWORD_LAST_CHANGED,
            "is_internal_app": False,
            "app_type": "system",
            "app_Id": APP_ID,
            "jti": access_jti,
        }

    def _decode(self, token: str) -> dict[str, Any] | None:
        try:
            # Expiry is checked against the injectable clock, not PyJWT's wall clock.
            return jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None

    def _access_ok(self, token: str, now: float) -> bool:
        claims = self._decode(token)
        # A refresh token (it carries `ati`) is not a bearer token.
        if claims is None or "ati" in claims or claims.get("client_id") != self.client_id:
            return False
        if claims.get("exp", 0) <= now:
            return False
        with self._lock:
            return claims.get("jti") not in self._expired_access

    def _refresh(self, token: str) -> dict[str, Any]:
        shown = f"{token[:8]}..."
        claims = self._decode(token)
        if claims is None or "ati" not in claims:
            raise _oauth_error(401, "invalid_token", "Cannot convert access token to JSON")
        if claims.get("exp", 0) <= self.clock():
            raise _oauth_error(401, "invalid_token", f"Invalid refresh token (expired): {shown}")
        with self._lock:  # check-and-consume must be atomic: one refresh token, one winner
            state = self._refresh_state.get(claims.get("jti", ""))
            if state is None or state == "revoked" or (state == "used" and self.strict):
                raise _oauth_error(400, "invalid_grant", f"Invalid refresh token: {shown}")
            self._refresh_state[claims["jti"]] = "used"
            self.stats.token_refreshes += 1
            return self._issue_pair()

    def _exchange_code(self, code: str, redirect_uri: str | None) -> dict[str, Any]:
        with self._lock:
            if code not in self._codes:
                raise _oauth_error(400, "invalid_grant", f"Invalid authorization code: {code}")
            issued_for = self._codes.pop(code)
            if issued_for is not None and redirect_uri != issued_for:
                raise _oauth_error(400, "invalid_grant", "Redirect URI mismatch.")
            self.stats.code_exchanges += 1
            return self._issue_pair()

    def _check_basic(self) -> None:
        header = request.headers.get("Authorization", "")
        expected = f"{self.client_id}:{self.client_secret}"
        try:
            scheme, _, value = header.partition(" ")
            given = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            given, scheme = "", ""
        if scheme.lower() != "basic" or not secrets.compare_digest(given, expected):
            raise _oauth_error(401, "unauthorized", "Bad credentials")

    # ---- request gate: faults, auth, quotas ------------------------------------------------

    def _take_fault(self, path: str, oauth: bool) -> _Fault | None:
        fault = self._faults.take(
            lambda f: f.oauth == oauth and (not f.path_contains or f.path_contains in path)
        )
        if fault is not None:
            self.stats.faults_served += 1
        return fault

    def _take_delay(self) -> float:
        with self._lock:
            for slow in self._slow:
                if slow[1] > 0:
                    slow[1] -= 1
                    self._slow = [s for s in self._slow if s[1] > 0]
                    return slow[0]
        return 0.0

    def _check_quota(self, endpoint: str, now: float) -> None:
        minute = int(now // 60)
        month_start, month_end = _month_bounds(now)
        with self._lock:
            used_min = self._minute_used.get(minute, 0)
            used_month = self._month_used.get(month_start, 0)
            period = None
            if used_month >= self.per_month:
                period, start, end, limit = "month", month_start, month_end, self.per_month
            elif used_min >= self.per_minute:
                period, start, end, limit = "minute", minute * 60, minute * 60 + 60, self.per_minute
            if period is not None:
                self.stats.throttled += 1
                body = {
                    "message": "Too Many Requests",
                    "details": "Usage limit exceeded for plan Watt",
                    "code": 429,
                    "period": period,
                    "period_start": start,
                    "period_end": end,
                    "limit": limit,
                }
                raise _ApiError(429, body)
            self._minute_used = {minute: used_min + 1}
            self._month_used = {month_start: used_month + 1}
            self.stats.data_requests[endpoint] += 1

    def _gate(self) -> Response | None:
        g.now = self.clock()
        if request.method not in _STD_METHODS:
            return _json({"reason": "501", "message": ["Not Implemented"]}, 501)
        path = request.path
        is_api, is_token = path.startswith("/api/v4/"), path == "/oauth/token"
        if not (is_api or is_token):
            return None
        if is_api and (delay := self._take_delay()):
            time.sleep(delay)
        fault = self._take_fault(path, oauth=is_token)
        if fault is not None:
            if fault.html:
                return Response(QUEUE_FULL_HTML, fault.status, mimetype="text/html")
            phrase = HTTPStatus(fault.status).phrase
            body = {"message": phrase, "details": "Simulated fault", "code": fault.status}
            return _json(body, fault.status)
        if is_token or request.url_rule is None:
            return None
        key = request.headers.get("key") or request.args.get("key")
        if not key:
            raise _api_error(401, "API Key missing in url/headers!")
        if key != self.api_key:
            raise _api_error(401, "API Key -Client mismatch")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self._access_ok(token.strip(), g.now):
            raise _api_error(401, "User is not authorized")
        self._check_quota(request.endpoint or "unknown", g.now)
        return None

    # ---- helpers for data endpoints --------------------------------------------------------

    def _spec(self, system_id: int) -> SystemSpec:
        spec = self.systems.get(system_id)
        if spec is None:
            raise _api_error(404, f'System not found for {{:id=>"{system_id}"}}')
        return spec

    def _cutoff(self) -> int:
        return int(g.now) - self.data_lag

    def _meta(self, spec: SystemSpec) -> dict[str, Any]:
        last_energy = self._cutoff() // model.MICRO_STEP * model.MICRO_STEP
        return {
            "status": "normal",
            "last_report_at": min(int(g.now), last_energy + 61),
            "last_energy_at": last_energy,
            "operational_at": model.local_day_bounds(spec, spec.operational_date)[0],
        }

    def _system_json(self, spec: SystemSpec) -> dict[str, Any]:
        meta = self._meta(spec)
        return {
            "system_id": spec.system_id,
            "name": spec.name,
            "public_name": "Residential System",
            "timezone": spec.timezone,
            "address": {"city": "Utrecht", "state": "UT", "country": "NL", "postal_code": "3511"},
            "connection_type": "ethernet",
            "status": "normal",
            "last_report_at": meta["last_report_at"],
            "last_energy_at": meta["last_energy_at"],
            "operational_at": meta["operational_at"],
            "attachment_type": "rack_mount",
            "interconnect_date": meta["operational_at"],
            # Enphase blanked these on 2023-07-03; clients must use /summary.
            "energy_lifetime": -1,
            "energy_today": -1,
            "system_size": -1,
        }

    def _today(self, spec: SystemSpec) -> date:
        return model.local_date(spec, g.now)

    def _produced(self, spec: SystemSpec, day: date) -> dict[str, int]:
        return model.totals_until(spec, day, self._cutoff())

    # ---- app -------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order
        self.install_misbehaviour(app)
        app.before_request(self._gate)

        @app.errorhandler(_ApiError)
        def _api_err(err: _ApiError) -> Response:
            return _json(err.body, err.status)

        @app.errorhandler(HTTPException)
        def _http_err(err: HTTPException) -> Response:
            status = err.code or 500
            if status == 405:
                return _json({"reason": "405", "message": ["Method not allowed"]}, 405)
            return _json(_api_error(status, err.description or "").body, status)

        self._add_oauth_routes(app)
        self._add_admin_routes(app)
        self._add_system_routes(app)
        self._add_telemetry_routes(app)
        self._add_event_routes(app)
        return app

    def _add_oauth_routes(self, app: Flask) -> None:
        @app.get("/oauth/authorize")
        def authorize() -> Response:
            args = request.args
            if (
                args.get("client_id") != self.client_id
                or args.get("response_type", "code") != "code"
            ):
                return _json({"error": "invalid_client", "error_description": "Bad client"}, 400)
            redirect_uri = args.get("redirect_uri") or None
            with self._lock:
                code = self._new_code(redirect_uri)
            target = urlparse(redirect_uri or "")
            default_hosts = {request.host, "api.enphaseenergy.com"}
            if not redirect_uri or (
                target.path == "/oauth/redirect_uri" and target.netloc in default_hosts
            ):
                return _code_page(code)
            query = {"code": code, **({"state": args["state"]} if "state" in args else {})}
            sep = "&" if target.query else "?"
            return Response(status=302, headers={"Location": redirect_uri + sep + urlencode(query)})

        @app.get("/oauth/redirect_uri")
        def redirect_page() -> Response:
            return _code_page(request.args.get("code", ""))

        @app.post("/oauth/token")
        def token() -> Response:
            self._check_basic()
            params = {**request.form.to_dict(), **request.args.to_dict()}
            grant = params.get("grant_type")
            if grant == "authorization_code":
                if not params.get("code"):
                    raise _oauth_error(
                        400, "invalid_request", "An authorization code must be supplied."
                    )
                return _json(self._exchange_code(params["code"], params.get("redirect_uri")))
            if grant == "refresh_token":
                try:
                    return _json(self._refresh(params.get("refresh_token", "")))
                except _ApiError:
                    with self._lock:
                        self.stats.rejected_refreshes += 1
                    raise
            raise _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")

    def _add_admin_routes(self, app: Flask) -> None:
        @app.post("/__sim__/faults")
        def faults() -> Response:
            body = request.get_json(force=True, silent=True) or {}
            try:
                if "fail_next" in body:
                    self.fail_next(**body["fail_next"])
                if "slow_next" in body:
                    self.slow_next(**body["slow_next"])
                if "set_month_used" in body:
                    self.set_month_used(int(body["set_month_used"]))
                if "corrupt_interval" in body:
                    c = body["corrupt_interval"]
                    self.corrupt_interval(c["telemetry"], c["end_at"], *c["values"])
                if "raise_alarm" in body:
                    return _json({"ok": True, "alarm_id": self.raise_alarm(**body["raise_alarm"])})
                if "clear_alarm" in body:
                    self.clear_alarm(**body["clear_alarm"])
            except (TypeError, ValueError, KeyError) as exc:
                return _json({"ok": False, "error": str(exc)}, 400)
            if body.get("revoke_refresh_tokens"):
                self.revoke_refresh_tokens()
            if body.get("expire_access_tokens"):
                self.expire_access_tokens()
            return _json({"ok": True})

        @app.get("/__sim__/stats")
        def stats() -> Response:
            with self._lock:
                return _json(self.stats.as_dict())

        @app.post("/__sim__/refresh-token")
        def refresh_token() -> Response:
            return _json({"refresh_token": self.mint_refresh_token()})

        @app.post("/__sim__/code")
        def code() -> Response:
            return _json({"code": self.issue_code()})

    def _add_system_routes(self, app: Flask) -> None:
        @app.get("/api/v4/systems", endpoint="systems")
        def systems() -> Response:
            page = max(1, request.args.get("page", 1, type=int))
            size = min(100, max(1, request.args.get("size", 10, type=int)))
            sort_by = request.args.get("sort_by", "id")
            if sort_by not in ("id", "-id"):
                raise _api_error(422, "The sorting parameter is not supported")
            specs = sorted(self.systems.values(), key=lambda s: s.system_id)
            if sort_by == "-id":
                specs.reverse()
            chunk = specs[(page - 1) * size : page * size]
            body: dict[str, Any] = {
                "total": len(specs),
                "current_page": page,
                "size": size,
                "count": len(chunk),
            }
            body |= {"items": "systems", "systems": [self._system_json(s) for s in chunk]}
            return _json(body)

        @app.get("/api/v4/systems/<int:system_id>", endpoint="system")
        def system(system_id: int) -> Response:
            return _json(self._system_json(self._spec(system_id)))

        @app.get("/api/v4/systems/<int:system_id>/summary", endpoint="summary")
        def summary(system_id: int) -> Response:
            spec = self._spec(system_id)
            return _json(self._summary(spec, request.args.get("summary_date")))

        @app.get("/api/v4/systems/<int:system_id>/devices", endpoint="devices")
        def devices(system_id: int) -> Response:
            return _json(self._devices(self._spec(system_id)))

    def _summary(self, spec: SystemSpec, raw_date: str | None) -> dict[str, Any]:
        today = self._today(spec)
        day = _parse_date(raw_date) if raw_date else today
        if day > today:
            raise _api_error(422, "Requested date is in the future")
        lifetime, d = 0, spec.operational_date
        while d < day:
            lifetime += model.daily_totals(spec, d)["production_wh"]
            d += timedelta(days=1)
        meta = self._meta(spec)
        current = 0
        if day == today:
            slot = int(g.now) // model.MICRO_STEP * model.MICRO_STEP
            micro = model.micro_intervals(spec, slot, slot + model.MICRO_STEP)
            current = micro[0]["powr"] if micro else 0
        energy_today = (
            self._produced(spec, day)["production_wh"] if day >= spec.operational_date else 0
        )
        return {
            "system_id": spec.system_id,
            "current_power": current,
            "energy_lifetime": lifetime,
            "energy_today": energy_today,
            "last_interval_end_at": meta["last_energy_at"],
            "last_report_at": meta["last_report_at"],
            "modules": spec.modules if day == today else 0,
            "operational_at": meta["operational_at"],
            "size_w": spec.size_w if day == today else 0,
            "nmi": None,
            "source": "meter" if spec.has_production_meter else "microinverters",
            "status": "normal",
            "summary_date": day.isoformat(),
            "battery_charge_w": 0,
            "battery_discharge_w": 0,
            "battery_capacity_wh": 0,
            "evse_power": [],
        }

    def _devices(self, spec: SystemSpec) -> dict[str, Any]:
        seen = self._meta(spec)["last_report_at"]
        common = {"last_report_at": seen, "status": "normal", "active": True}
        micros = []
        for i in range(1, spec.modules + 1):
            serial = f"{spec.system_id % 10**6:06d}{i:06d}"
            micros.append(
                {
                    "id": spec.system_id * 100 + i,
                    "name": f"Microinverter {serial}",
                    "serial_number": serial,
                    "part_number": "800-01391-r03",
                    "sku": "IQ8PLUS-72-M-INT",
                    "model": "IQ8+",
                    "product_name": "IQ8+",
                    "feoc_compliant": False,
                    "dom_compliant": False,
                    **common,
                }
            )
        meter_base = {"part_number": "800-00655-r09", "sku": None, "model": "Envoy S"}
        meter_base |= {"state": "enabled", "config_phase": "single", "product_name": "IQ Gateway"}
        meters = []
        if spec.has_production_meter:
            meters.append(
                {"id": spec.system_id * 100 + 91, "name": "production", "config_type": "Production"}
                | {"serial_number": f"{model.GATEWAY_SERIAL}EIM1", **meter_base, **common}
            )
        if spec.has_consumption_meter:
            meters.append(
                {"id": spec.system_id * 100 + 92, "name": "consumption", "config_type": "Net"}
                | {"serial_number": f"{model.GATEWAY_SERIAL}EIM2", **meter_base, **common}
            )
        gateway = {
            "id": spec.system_id * 100 + 90,
            "name": "IQ Gateway",
            "serial_number": model.GATEWAY_SERIAL,
            "part_number": "800-00654-r08",
            "sku": "ENV-S-WM-230",
            "model": "Envoy-S-Metered-EU",
            "product_name": "IQ Gateway",
            "emu_sw_version": "D8.2.4382",
            "cellular_modem": None,
            **common,
        }
        devices: dict[str, list[dict[str, Any]]] = {"micros": micros, "gateways": [gateway]}
        if meters:
            devices["meters"] = meters
        total = sum(len(v) for v in devices.values())
        return {
            "system_id": spec.system_id,
            "total_devices": total,
            "items": "devices",
            "devices": devices,
        }

    def _add_telemetry_routes(self, app: Flask) -> None:
        kinds = {
            "production_micro": (model.micro_intervals, True),
            "production_meter": (model.meter_production_intervals, False),
            "consumption_meter": (model.consumption_intervals, True),
        }
        for name, (source, with_meta) in kinds.items():
            app.add_url_rule(
                f"/api/v4/systems/<int:system_id>/telemetry/{name}",
                endpoint=name,
                view_func=self._telemetry_view(name, source, with_meta),
            )

        @app.get("/api/v4/systems/<int:system_id>/energy_lifetime", endpoint="energy_lifetime")
        def energy_lifetime(system_id: int) -> Response:
            return _json(self._energy_lifetime(self._spec(system_id)))

    def _telemetry_view(
        self, name: str, source: Callable[[SystemSpec, int, int], list[dict]], with_meta: bool
    ) -> Callable[[int], Response]:
        def view(system_id: int) -> Response:
            spec = self._spec(system_id)
            args = request.args
            granularity = args.get("granularity", "day")
            if granularity not in GRANULARITY_SECONDS:
                raise _api_error(422, f"Invalid granularity: {granularity}")
            now = int(g.now)
            if "start_at" in args:
                start = _parse_epoch(args["start_at"], "start_at")
            elif "start_date" in args:
                start = model.local_day_bounds(spec, _parse_date(args["start_date"]))[0]
            else:
                start = model.local_day_bounds(spec, self._today(spec))[0]
            if start > now:
                raise _api_error(422, "Requested date is in the future")
            if start < now - TWO_YEARS:
                raise _api_error(422, "Requested date range is invalid for this system")
            # Before the first reported day the API answers from that day's midnight.
            start = max(start, model.local_day_bounds(spec, spec.operational_date)[0])
            end = start + GRANULARITY_SECONDS[granularity]
            present = {
                "production_micro": True,
                "production_meter": spec.has_production_meter,
                "consumption_meter": spec.has_consumption_meter,
            }[name]
            upto = min(self._cutoff(), end)
            intervals = source(spec, start, upto) if present and upto > start else []
            intervals = self._corrupted(name, intervals)
            devices = (spec.modules if name == "production_micro" else 1) if present else 0
            body: dict[str, Any] = {
                "system_id": spec.system_id,
                "granularity": granularity,
                "total_devices": devices,
            }
            if "start_at" not in args and "start_date" in args:
                body["start_date"] = args["start_date"]
            else:
                body["start_at"] = start
            body |= {"end_at": end, "items": "intervals", "intervals": intervals}
            if with_meta:
                body["meta"] = self._meta(spec)
            return _json(body)

        view.__name__ = name
        return view

    def _corrupted(self, name: str, intervals: list[dict]) -> list[dict]:
        field = "wh_del" if name == "production_meter" else "enwh"
        out = []
        with self._lock:
            for i in intervals:
                values = self._corrupt.get((name, i["end_at"]))
                out += [i] if values is None else [{**i, field: v} for v in values]
        return out

    def _energy_lifetime(self, spec: SystemSpec) -> dict[str, Any]:
        args = request.args
        today = self._today(spec)
        start = _parse_date(args["start_date"]) if "start_date" in args else spec.operational_date
        start = max(start, spec.operational_date)
        if "end_date" in args:
            end = _parse_date(args["end_date"])
        else:
            end = today if start == today else today - timedelta(days=1)
        if start > today or end > today:
            raise _api_error(422, "Requested date is in the future")
        if end < start:
            raise _api_error(422, "Requested date range is invalid for this system")
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        totals: list[Mapping[str, float]] = [self._produced(spec, d) for d in days]
        with self._lock:
            for n, d in enumerate(days):
                wh = self._corrupt.get(("energy_lifetime", d.isoformat()))
                if wh is not None:
                    totals[n] = dict.fromkeys(totals[n], wh[0])
        body: dict[str, Any] = {
            "system_id": spec.system_id,
            "start_date": start.isoformat(),
            "production": [t["production_wh"] for t in totals],
        }
        if spec.has_production_meter:
            body["meter_start_date"] = spec.operational_date.isoformat()
        if args.get("production") == "all":
            body["micro_production"] = [t["micro_wh"] for t in totals]
            body["meter_production"] = [
                t["meter_wh"] if spec.has_production_meter else 0 for t in totals
            ]
        body["meta"] = self._meta(spec)
        return body

    def _add_event_routes(self, app: Flask) -> None:
        board = self.alarm_board

        @app.get("/api/v4/systems/<int:system_id>/events", endpoint="events")
        def events(system_id: int) -> Response:
            spec = self._spec(system_id)
            start, end = self._event_window()
            found = board.events(spec, start, end, int(g.now))
            return _json({"system_id": spec.system_id, "events": found})

        @app.get("/api/v4/systems/<int:system_id>/alarms", endpoint="alarms")
        def alarms(system_id: int) -> Response:
            spec = self._spec(system_id)
            start, end = self._event_window()
            want_cleared = request.args.get("cleared", "false").lower() == "true"
            found = board.alarms(spec, start, end, int(g.now))
            chosen = [a for a in found if a["cleared"] == want_cleared]
            return _json({"system_id": spec.system_id, "alarms": chosen})

        # No parameters: everything open now (reference §3.13).
        @app.get("/api/v4/systems/<int:system_id>/open_events", endpoint="open_events")
        def open_events(system_id: int) -> Response:
            spec = self._spec(system_id)
            return _json(
                {"system_id": spec.system_id, "events": board.open_events(spec, int(g.now))}
            )

        @app.get("/api/v4/systems/<int:system_id>/open_alarms", endpoint="open_alarms")
        def open_alarms(system_id: int) -> Response:
            spec = self._spec(system_id)
            return _json(
                {"system_id": spec.system_id, "alarms": board.open_alarms(spec, int(g.now))}
            )

    def _event_window(self) -> tuple[int, int]:
        args = request.args
        if not args.get("start_time"):
            raise _api_error(422, "start_time is required")
        start = _parse_epoch(args["start_time"], "start_time")
        if "end_time" in args:
            end = _parse_epoch(args["end_time"], "end_time")
        else:
            end = min(start + 86400, int(g.now))
        if end < start:
            raise _api_error(422, "end_time must be after start_time")
        if end - start > MAX_EVENT_WINDOW:
            raise _api_error(422, "Time range between start_time and end_time exceeds 7 days")
        if start < int(g.now) - EVENT_LOOKBACK:
            # The rule is Enphase's; the wording of its error is not documented.
            raise _api_error(422, "start_time cannot be older than 9 months")
        return start, end


def _number(value: float) -> int | float:
    # The API sends whole Wh as JSON integers.
    return int(value) if float(value).is_integer() else float(value)


def _json(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _code_page(code: str) -> Response:
    html = (
        "<!DOCTYPE html><html><head><title>Authorization code</title></head><body>"
        f"<p>Your authorization code is</p><h1 id='code'>{escape(code)}</h1></body></html>"
    )
    return Response(html, 200, mimetype="text/html")
