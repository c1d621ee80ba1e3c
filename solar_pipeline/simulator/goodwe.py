"""A GoodWe SEMS portal simulator over real HTTP: app login, regional base, expiry, throttling.

SEMS has no official homeowner API. What this speaks is what community clients send and read
(see solar_pipeline/sources/goodwe/client.py for the URLs of markruys/gw2pvo and
TimSoethout/goodwe-sems-home-assistant):
- `POST {base}/api/v{1,2,3}/Common/CrossLogin` with `{account, pwd}` (plain password, as gw2pvo
  and TimSoethout's legacy login send it, or its MD5 hex digest, as frontiermind sends it);
  answers `{"hasError", "code": 0, "msg", "data": {uid, timestamp, token, client, version,
  language}, "api": <regional base>}`. The regional base is `{base}/{region}/api/`; data paths
  exist only there, so a client that ignores `api` gets 404.
- Later calls carry the JSON-encoded `data` in the `Token` header. Codes 100001 (no or unknown
  token) and 100002 (expired token) mean "log in again" (gw2pvo).
- `GY0429` is the rate-limit code (TimSoethout backs off 300 s).
- `v2/PowerStationMonitor/GetPowerStationPowerAndIncomeByDay` `{powerstation_id, count, date}`
  -> `data: [{"d": "MM/DD/YYYY", "p": kWh}]`, `count` days ending at `date` (gw2pvo and a
  comment in another client).
- `v2/PowerStationMonitor/GetPowerStationPacByDayForApp` `{id, date}` ->
  `data: {"pacs": [{"date": "MM/DD/YYYY HH:MM:SS", "pac": W}]}` (gw2pvo); the field notes'
  `v2/PowerStation/GetPowerStationPac` is served as an alias with the same shape.

Inferred or invented (kept switchable or noted): answers are HTTP 200 with the code in the body;
the wrong-password code 100005 and its text, the unknown-station and bad-request codes, the
token lifetime (`token_ttl`), the throttling threshold, the largest `count` (31), the 3
decimals of `p` (finer than the app shows, so a 0.1% comparison is possible), the 5-minute
sample grid with night zeros, and that the repeated hour of the 25-hour day is listed twice in
time order. Income is left out of the daily items (its field name was not seen).

Truth comes from solar_model: a station's production is the model's 5-minute inverter (micro)
series, the same numbers the Fronius simulator serves. The sample labelled t is the mean power
of [t, t + 5 min); the daily `p` is the exact sum of the day's 5-minute energies, which is
`true_energy(station_id, day)`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, request
from werkzeug.wrappers import Response as BaseResponse

from solar_pipeline.simulator import solar_model as model
from solar_pipeline.simulator.faults import ArmsHttpFaults
from solar_pipeline.simulator.server import WsgiSimulator
from solar_pipeline.simulator.solar_model import SystemSpec

STEP = model.MICRO_STEP
DAILY_PATH = "v2/PowerStationMonitor/GetPowerStationPowerAndIncomeByDay"
PAC_PATHS = (
    "v2/PowerStationMonitor/GetPowerStationPacByDayForApp",
    "v2/PowerStation/GetPowerStationPac",
)
DEFAULT_STATION = "6c1f2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
CODE_NO_ACCESS = 100001
CODE_EXPIRED = 100002
CODE_BAD_LOGIN = 100005  # invented
CODE_NO_STATION = 100011  # invented
CODE_BAD_REQUEST = 100012  # invented
CODE_THROTTLED = "GY0429"
MAX_DAYS = 31
JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class SemsStats:
    requests: Counter[str] = field(default_factory=Counter)
    logins: int = 0
    refused_logins: int = 0
    no_access: int = 0
    expired: int = 0
    throttled: int = 0
    faults_served: int = 0


class _Refusal(Exception):
    """An error answer in SEMS's envelope (HTTP 200, the reason in `code`)."""

    def __init__(self, code: int | str, msg: str) -> None:
        super().__init__(code)
        self.code, self.msg = code, msg


def _answer(data: Any, code: int | str = 0, msg: str = "success", **extra: Any) -> Response:
    body = {"hasError": code != 0, "code": code, "msg": msg, "data": data, **extra}
    return Response(json.dumps(body), 200, content_type=JSON_TYPE)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class SemsSimulator(ArmsHttpFaults, WsgiSimulator):
    thread_name = "goodwe-sim"
    fault_body = '{"hasError":false,"code":0,"msg":"success","data":{"pacs":[{"date":"06/0'
    fault_content_type = JSON_TYPE

    def __init__(
        self,
        stations: Mapping[str, SystemSpec] | None = None,
        *,
        account: str = "owner@example.com",
        password: str = "sim-Passw0rd-7731",
        region: str = "eu",
        token_ttl: float | None = 8 * 3600,
        throttle_after: int | None = None,
        throttle_window: float = 300.0,
        max_days: int = MAX_DAYS,
        data_lag: int = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stations = dict(stations or {DEFAULT_STATION: SystemSpec()})
        self.account, self.password, self.region = account, password, region
        self.token_ttl = token_ttl
        self.throttle_after, self.throttle_window = throttle_after, throttle_window
        self.max_days, self.data_lag = max_days, data_lag
        self.clock = clock
        self.stats = SemsStats()
        self.base_url = ""
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # token -> issued at
        self._expired: set[str] = set()
        self._calls: list[float] = []  # times of calls within the throttle window
        ArmsHttpFaults.__init__(self)
        self.app = self._build_app()

    # ---- addresses -------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The global base a client starts at (where CrossLogin lives)."""
        return f"{self.base_url}/api/"

    @property
    def regional_url(self) -> str:
        """The base the login answer sends clients to."""
        return f"{self.base_url}/{self.region}/api/"

    # ---- test controls ---------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far answers 100002 from now on."""
        with self._lock:
            self._expired |= set(self._tokens)
            self._tokens.clear()

    def issued_tokens(self) -> list[str]:
        """Every token handed out so far (tests check that none leaks into a record)."""
        with self._lock:
            return [*self._tokens, *self._expired]

    def reset_throttle(self) -> None:
        with self._lock:
            self._calls.clear()

    def true_energy(self, station_id: str, day: date) -> dict[str, int]:
        """Wh of the station's whole local `day`, straight from the model (not through HTTP)."""
        return {"produced_wh": model.daily_totals(self._spec(station_id), day)["micro_wh"]}

    # ---- gate: faults, throttling, tokens --------------------------------------------------

    def _gate(self) -> BaseResponse | None:
        g.now = self.clock()
        if request.url_rule is None:
            return None
        self.stats.requests[request.endpoint or "unknown"] += 1
        answer = self._fault_answer(request.path)
        if answer is not None:
            self.stats.faults_served += 1
            return answer
        if self.throttle_after is not None:
            with self._lock:
                self._calls = [t for t in self._calls if t > g.now - self.throttle_window]
                if len(self._calls) >= self.throttle_after:
                    self.stats.throttled += 1
                    return _answer(None, CODE_THROTTLED, "Requests are too frequent")
                self._calls.append(g.now)
        return None

    def _authorise(self) -> None:
        try:
            header = json.loads(request.headers.get("Token", ""))
        except ValueError:
            header = None
        token = header.get("token") if isinstance(header, dict) else None
        with self._lock:
            issued = self._tokens.get(token) if isinstance(token, str) else None
            too_old = self.token_ttl is not None and g.now - (issued or 0) >= self.token_ttl
            if issued is not None and too_old:
                self._expired.add(token)  # type: ignore[arg-type]
                del self._tokens[token]  # type: ignore[arg-type]
                issued = None
            expired = isinstance(token, str) and token in self._expired
        if issued is not None:
            return
        if expired:
            self.stats.expired += 1
            raise _Refusal(CODE_EXPIRED, "The authorization has expired, please log in again.")
        self.stats.no_access += 1
        raise _Refusal(CODE_NO_ACCESS, "No access, please log in.")

    @staticmethod
    def _params() -> dict[str, Any]:
        """The call's parameters: community clients send JSON (TimSoethout) or a form (gw2pvo)."""
        data = request.get_json(silent=True)
        if isinstance(data, dict):
            return data
        return request.form.to_dict()

    # ---- login -----------------------------------------------------------------------------

    def _login(self, version: str) -> Response:
        params = self._params()
        pwd = params.get("pwd")
        ok = params.get("account") == self.account and pwd in (self.password, _md5(self.password))
        if not ok:
            self.stats.refused_logins += 1
            return _answer(None, CODE_BAD_LOGIN, "Email or password error.")
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = g.now
        self.stats.logins += 1
        data = {
            "uid": _md5(self.account)[:8] + "-sim",
            "timestamp": int(g.now * 1000),
            "token": token,
            "client": "ios",
            "version": "",
            "language": "en",
        }
        return _answer(data, msg="Successful", api=self.regional_url)

    # ---- data ------------------------------------------------------------------------------

    def _spec(self, station_id: Any) -> SystemSpec:
        spec = self.stations.get(str(station_id))
        if spec is None:
            raise _Refusal(CODE_NO_STATION, "The power station does not exist or is not yours.")
        return spec

    @staticmethod
    def _date(raw: Any) -> date:
        try:
            return date.fromisoformat(str(raw)[:10])
        except ValueError:
            raise _Refusal(CODE_BAD_REQUEST, f"Bad date {raw!r}") from None

    def _cutoff(self) -> int:
        return int(g.now) - self.data_lag

    def _day_wh(self, spec: SystemSpec, day: date) -> float | None:
        start, end = model.local_day_bounds(spec, day)
        if end <= self._cutoff():
            return float(model.daily_totals(spec, day)["micro_wh"])
        if start >= self._cutoff():
            return None
        return float(sum(i["enwh"] for i in model.micro_intervals(spec, start, self._cutoff())))

    def _daily(self) -> Response:
        self._authorise()
        params = self._params()
        spec = self._spec(params.get("powerstation_id"))
        last = self._date(params.get("date"))
        try:
            count = int(params.get("count", 1))
        except (TypeError, ValueError):
            raise _Refusal(CODE_BAD_REQUEST, "count must be a number") from None
        if not 1 <= count <= self.max_days:
            raise _Refusal(CODE_BAD_REQUEST, f"count must be 1..{self.max_days}")
        items = []
        for k in range(count - 1, -1, -1):
            day = last - timedelta(days=k)
            if day < spec.operational_date:
                continue
            wh = self._day_wh(spec, day)
            if wh is None:
                continue
            items.append({"d": day.strftime("%m/%d/%Y"), "p": round(wh / 1000, 3)})
        return _answer(items)

    def _pac(self) -> Response:
        self._authorise()
        params = self._params()
        spec = self._spec(params.get("id"))
        day = self._date(params.get("date"))
        zone = ZoneInfo(spec.timezone)
        pacs = []
        if day >= spec.operational_date:
            start, end = model.local_day_bounds(spec, day)
            for item in model.micro_intervals(spec, start, min(end, self._cutoff())):
                label = datetime.fromtimestamp(item["end_at"] - STEP, zone)
                pacs.append({"date": label.strftime("%m/%d/%Y %H:%M:%S"), "pac": item["powr"]})
        return _answer({"pacs": pacs})

    # ---- app -------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        self.install_misbehaviour(app)
        app.before_request(self._gate)

        @app.errorhandler(_Refusal)
        def _refused(err: _Refusal) -> Response:
            return _answer(None, err.code, err.msg)

        @app.post("/api/<any(v1, v2, v3):version>/Common/CrossLogin", endpoint="CrossLogin")
        def login(version: str) -> Response:
            return self._login(version)

        regional = f"/{self.region}/api/"
        app.add_url_rule(regional + DAILY_PATH, "daily", self._daily, methods=["POST"])
        for i, path in enumerate(PAC_PATHS):
            app.add_url_rule(regional + path, f"pac{i}", self._pac, methods=["POST"])
        return app
