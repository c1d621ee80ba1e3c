"""An SMA Monitoring API simulator over real HTTP: app tokens, owner consent, a 5-minute rate
limit, and the EnergyAndPowerPv Month and Day sets of a deterministic plant.

What it speaks (see solar_pipeline.sources.sma.oauth / client / parse for where each point
comes from, documented or inferred):
- `POST /oauth2/token` (form): `grant_type=client_credentials` with `client_id` and
  `client_secret` (in the form or as Basic auth) -> `{access_token, expires_in: 300,
  refresh_token, refresh_expires_in: 0, token_type, scope}`; `grant_type=refresh_token` rotates:
  the used refresh token dies. Wrong credentials -> 401 `invalid_client`; an unknown or spent
  refresh token -> 400 `invalid_grant`.
- `POST /oauth2/v2/bc-authorize` (bearer app token, JSON `{"loginHint": email}`) -> 201
  `{loginHint, state, expirationDate, interval}`. The first request leaves the owner's consent
  Pending (SMA e-mails them) until the test calls `approve(email)`, or is Accepted at once with
  `auto_approve`. Asking again returns the current state; after `revoke()` a new request starts
  a new Pending consent (inferred: SMA's pages do not say).
- `GET /v1/plants/{id}/measurements/sets/EnergyAndPowerPv/Month?Date=YYYY-MM` (one value per
  local day, labelled with its midnight) and `.../Day?Date=YYYY-MM-DD` (5-minute values labelled
  with the *end* of each period as naive plant-local time: 00:05 ... next day 00:00), in Wh with
  `ReturnEnergyValues=true`, else average W. A missing or expired token -> 401; a plant whose
  owner has not consented (or revoked) -> 403.
- More than `per_window` requests of one credential in a 5-minute window -> 429 with
  `Retry-After` (seconds to the window's end).

The truth is solar_model's 5-minute inverter production (`micro_intervals`), so `true_energy` of
a local day is exactly what a correct client adds up. Test traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import base64
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, json, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from solar_pipeline.simulator import solar_model as model
from solar_pipeline.simulator.faults import ArmsHttpFaults
from solar_pipeline.simulator.server import WsgiSimulator
from solar_pipeline.simulator.solar_model import SystemSpec

STEP = model.MICRO_STEP  # 5 minutes
WINDOW_S = 300
PER_WINDOW = 60  # SMA does not publish the number; tests set their own
ACCESS_LIFETIME_S = 300
LABEL_FORMAT = "%Y-%m-%dT%H:%M:%S"
PV_SET = "EnergyAndPowerPv"
OWNER = "owner@example.test"


@dataclass
class SmaStats:
    requests: Counter[str] = field(default_factory=Counter)
    grants: Counter[str] = field(default_factory=Counter)
    consent_requests: int = 0
    throttled: int = 0
    refused: int = 0
    forbidden: int = 0
    faults_served: int = 0


@dataclass
class _Consent:
    state: str
    requested_at: float


class _ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str, headers: dict | None = None):
        super().__init__(status)
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers or {}


class _OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(status)
        self.status, self.error, self.description = status, error, description


@lru_cache(maxsize=4096)
def plant_periods(spec: SystemSpec, day: date) -> tuple[tuple[int, datetime, int], ...]:
    """(end epoch s, naive local end label, Wh) of each 5-minute period of a local day."""
    start, end = model.local_day_bounds(spec, day)
    zone = ZoneInfo(spec.timezone)
    return tuple(
        (i["end_at"], datetime.fromtimestamp(i["end_at"], zone).replace(tzinfo=None), i["enwh"])
        for i in model.micro_intervals(spec, start, end)
    )


class SmaSimulator(ArmsHttpFaults, WsgiSimulator):
    thread_name = "sma-sim"
    fault_body = '{"plant": {"plantId": "1"}, "setType": "EnergyAndPowerPv", "resolution": "Fi'

    def __init__(
        self,
        plants: list[SystemSpec] | None = None,
        *,
        owners: dict[str, list[int]] | None = None,
        client_id: str = "sim-sma-client",
        client_secret: str = "sim-sma-secret-0123456789abcdef",
        auto_approve: bool = False,
        per_window: int = PER_WINDOW,
        window_s: int = WINDOW_S,
        access_lifetime_s: int = ACCESS_LIFETIME_S,
        data_lag: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plants = {s.system_id: s for s in (plants or [SystemSpec()])}
        self.owners = owners or {OWNER: list(self.plants)}
        self.client_id, self.client_secret = client_id, client_secret
        self.auto_approve = auto_approve
        self.per_window, self.window_s = per_window, window_s
        self.access_lifetime_s, self.data_lag = access_lifetime_s, data_lag
        self.clock = clock
        self.stats = SmaStats()
        self.base_url = ""
        self._lock = threading.Lock()
        self._access: dict[str, float] = {}  # token -> expires at
        self._refresh: set[str] = set()  # live refresh tokens
        self._consent: dict[str, _Consent] = {}
        self._used: Counter[tuple[str, int]] = Counter()  # (client, window)
        ArmsHttpFaults.__init__(self)
        self.app = self._build_app()

    # ---- URLs --------------------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @property
    def consent_url(self) -> str:
        return f"{self.base_url}/oauth2/v2/bc-authorize"

    # ---- test controls -----------------------------------------------------------------------

    def approve(self, email: str = OWNER) -> None:
        """The owner clicks the link in SMA's e-mail."""
        with self._lock:
            self._consent[email] = _Consent("Accepted", self.clock())

    def revoke(self, email: str | None = None) -> None:
        """The owner (or every owner) withdraws the consent in Sunny Portal."""
        with self._lock:
            for who in [email] if email else list(self._consent):
                if who in self._consent:
                    self._consent[who].state = "Revoked"

    def consent_state(self, email: str = OWNER) -> str | None:
        consent = self._consent.get(email)
        return consent.state if consent else None

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    def live_refresh_tokens(self) -> int:
        return len(self._refresh)

    def true_energy(self, plant_id: int, day: date) -> dict[str, int]:
        """Wh of the plant's whole local `day`, straight from the model (not through HTTP)."""
        return {"produced_wh": model.daily_totals(self._spec(plant_id), day)["micro_wh"]}

    # ---- gate: faults, credentials, limits ---------------------------------------------------

    def _count(self) -> None:
        """One request of the (only) credential; 429 beyond the window's allowance."""
        now = self.clock()
        window = int(now // self.window_s)
        with self._lock:
            if self._used[(self.client_id, window)] >= self.per_window:
                self.stats.throttled += 1
                retry = max(1, math.ceil((window + 1) * self.window_s - now))
                raise _ApiError(
                    429,
                    "Too Many Requests",
                    f"Rate limit of {self.per_window} requests per 5 minutes exceeded",
                    {"Retry-After": str(retry)},
                )
            self._used[(self.client_id, window)] += 1

    def _bearer(self) -> str:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        with self._lock:
            expires = self._access.get(token)
        if not token or expires is None or expires <= self.clock():
            self.stats.refused += 1
            raise _ApiError(401, "Unauthorized", "Missing, unknown or expired access token")
        return token

    def _gate(self) -> BaseResponse | None:
        g.now = self.clock()
        if request.url_rule is None or not request.path.startswith("/v1/"):
            return None
        self._bearer()
        self._count()
        self.stats.requests[request.endpoint or "unknown"] += 1
        answer = self._fault_answer(request.path)
        if answer is not None:
            self.stats.faults_served += 1
            return answer
        return None

    # ---- OAuth -------------------------------------------------------------------------------

    def _client_ok(self) -> bool:
        cid, secret = request.form.get("client_id"), request.form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
        return cid == self.client_id and secret == self.client_secret

    def _token(self) -> dict[str, Any]:
        if not self._client_ok():
            self.stats.refused += 1
            raise _OAuthError(401, "invalid_client", "Invalid client or Invalid client credentials")
        self._count()
        grant = request.form.get("grant_type", "")
        with self._lock:
            if grant == "refresh_token":
                old = request.form.get("refresh_token", "")
                if old not in self._refresh:
                    raise _OAuthError(400, "invalid_grant", "Invalid refresh token")
                self._refresh.discard(old)  # rotation: the used token dies
            elif grant != "client_credentials":
                raise _OAuthError(400, "unsupported_grant_type", f"Unsupported grant {grant!r}")
            self.stats.grants[grant] += 1
            access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            self._access[access] = self.clock() + self.access_lifetime_s
            self._refresh.add(refresh)
        return {
            "access_token": access,
            "expires_in": self.access_lifetime_s,
            "refresh_expires_in": 0,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "monitoringApi:read offline_access",
        }

    def _bc_authorize(self) -> tuple[dict[str, Any], int]:
        self._bearer()
        self._count()
        body = request.get_json(silent=True)
        email = body.get("loginHint") if isinstance(body, dict) else None
        if not isinstance(email, str) or "@" not in email:
            raise _ApiError(400, "Bad Request", "loginHint must be the owner's e-mail address")
        if email not in self.owners:
            raise _ApiError(404, "Not Found", "No SMA user with this e-mail owns a plant")
        now = self.clock()
        with self._lock:
            self.stats.consent_requests += 1
            consent = self._consent.get(email)
            if consent is None or consent.state == "Revoked":
                consent = _Consent("Accepted" if self.auto_approve else "Pending", now)
                self._consent[email] = consent
        expires = datetime.fromtimestamp(consent.requested_at + 86400, UTC)
        return {
            "loginHint": email,
            "state": consent.state,
            "expirationDate": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "interval": 5,
        }, 201

    # ---- data --------------------------------------------------------------------------------

    def _spec(self, plant_id: int) -> SystemSpec:
        spec = self.plants.get(plant_id)
        if spec is None:
            raise _ApiError(404, "Not Found", f"Plant {plant_id} not found")
        return spec

    def _consented(self, plant_id: int) -> SystemSpec:
        spec = self._spec(plant_id)
        for email, plants in self.owners.items():
            consent = self._consent.get(email)
            if plant_id in plants and consent is not None and consent.state == "Accepted":
                return spec
        self.stats.forbidden += 1
        raise _ApiError(403, "Forbidden", f"No consent of the owner of plant {plant_id}")

    def _periods(self, spec: SystemSpec, day: date) -> list[tuple[int, datetime, int]]:
        """The day's periods already uploaded (ended before now - data_lag), after install."""
        installed = model.local_day_bounds(spec, spec.operational_date)[0]
        cutoff = int(g.now) - self.data_lag
        return [p for p in plant_periods(spec, day) if installed < p[0] <= cutoff]

    def _envelope(self, spec: SystemSpec, resolution: str, items: list) -> dict[str, Any]:
        return {
            "plant": {"plantId": str(spec.system_id), "name": spec.name, "timezone": spec.timezone},
            "setType": PV_SET,
            "resolution": resolution,
            "set": items,
        }

    def _energy_values(self) -> bool:
        return request.args.get("ReturnEnergyValues", "false").lower() == "true"

    def _day(self, plant_id: int) -> dict[str, Any]:
        spec = self._consented(plant_id)
        try:
            day = date.fromisoformat(request.args.get("Date", ""))
        except ValueError:
            raise _ApiError(400, "Bad Request", "Date must be YYYY-MM-DD") from None
        factor = 1 if self._energy_values() else 3600 // STEP  # Wh, else average W
        items = [
            {"time": label.strftime(LABEL_FORMAT), "pvGeneration": float(wh * factor)}
            for _, label, wh in self._periods(spec, day)
        ]
        return self._envelope(spec, "FiveMinutes", items)

    def _month(self, plant_id: int) -> dict[str, Any]:
        spec = self._consented(plant_id)
        raw = request.args.get("Date", "")
        try:
            first = datetime.strptime(raw, "%Y-%m").date()
        except ValueError:
            raise _ApiError(400, "Bad Request", "Date must be YYYY-MM") from None
        items = []
        day = first
        while day.month == first.month:
            periods = self._periods(spec, day)
            if periods:
                stamp = datetime.combine(day, datetime.min.time()).strftime(LABEL_FORMAT)
                items.append({"time": stamp, "pvGeneration": float(sum(p[2] for p in periods))})
            day += timedelta(days=1)
        return self._envelope(spec, "OneDay", items)

    # ---- app ---------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.json.sort_keys = False  # type: ignore[attr-defined]
        self.install_misbehaviour(app)
        app.before_request(self._gate)

        @app.errorhandler(_ApiError)
        def _api_err(err: _ApiError) -> Response:
            return _problem(err.status, err.title, err.detail, err.headers)

        @app.errorhandler(_OAuthError)
        def _oauth_err(err: _OAuthError) -> Response:
            body = {"error": err.error, "error_description": err.description}
            return _json(body, err.status)

        @app.errorhandler(HTTPException)
        def _http_err(err: HTTPException) -> Response:
            return _problem(err.code or 500, err.name, err.description or "")

        @app.post("/oauth2/token", endpoint="token")
        def token() -> Response:
            return _json(self._token())

        @app.post("/oauth2/v2/bc-authorize", endpoint="bc_authorize")
        def bc_authorize() -> Response:
            return _json(*self._bc_authorize())

        base = "/v1/plants/<int:plant_id>/measurements/sets"

        @app.get(f"{base}/{PV_SET}/Day", endpoint="day")
        def day(plant_id: int) -> Response:
            return _json(self._day(plant_id))

        @app.get(f"{base}/{PV_SET}/Month", endpoint="month")
        def month(plant_id: int) -> Response:
            return _json(self._month(plant_id))

        return app


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json; charset=utf-8")


def _problem(status: int, title: str, detail: str, headers: dict | None = None) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(
        json.dumps(body), status, headers=headers, content_type="application/problem+json"
    )
