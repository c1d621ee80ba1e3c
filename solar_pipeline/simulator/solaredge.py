"""A SolarEdge monitoring API simulator over real HTTP: both key styles, daily limits, naive times.

What it speaks (field notes §3, the V1 monitoring API document, the `solaredge` 3.x README):
- `GET /site/{id}/energy?timeUnit=DAY&startDate&endDate` (at most a year per call) and
  `timeUnit=QUARTER_OF_AN_HOUR` (at most a month), `GET /site/{id}/energyDetails` with the
  meters Production, Consumption, SelfConsumption, FeedIn and Purchased (15-minute or daily,
  a 15-minute query spans at most a month), `GET /site/{id}/overview`.
- Every date and time is a naive site-local wall-clock string, `YYYY-MM-DD hh:mm:ss`, that
  labels the *start* of its period. On the 25-hour day the repeated hour's quarters appear
  twice, in time order; on the 23-hour day the skipped hour has none.
- Keys: the V2 key in the `X-API-Key` header; the V1 `api_key` query parameter answers
  410 Gone (V1 was retired on 2026-11-03) unless `serve_v1` is set, to replay an old key.
- 300 requests per day per key and per site, 3 concurrent calls, 429 beyond.

Inferred, not documented (kept switchable or noted): the V2 paths and shapes are taken to be the
V1 ones (the real V2 API has its own), the quota day is the UTC day, error bodies are RFC 9457
problem+json, a range that is too long is a 403, and energyDetails omits `value` where there is
no data while `energy` sends `null`.

The truth comes from solar_model: production is the model's 15-minute production meter,
consumption its consumption meter, and feed-in, purchase and self-consumption are netted per
quarter, so `true_energy` of a day is exactly what a correct client adds up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
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

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
METERS = ("Production", "Consumption", "SelfConsumption", "FeedIn", "Purchased")
PER_DAY = 300
MAX_CONCURRENT = 3
QUARTER = model.METER_STEP


@dataclass
class SolarEdgeStats:
    requests: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    gone: int = 0
    refused: int = 0
    faults_served: int = 0
    max_in_flight: int = 0


@dataclass(frozen=True)
class Quarter:
    """One 15-minute period of a site: its real start (epoch s) and naive local label."""

    start: int
    label: datetime
    production: int
    consumption: int

    @property
    def feed_in(self) -> int:
        return max(0, self.production - self.consumption)

    @property
    def purchased(self) -> int:
        return max(0, self.consumption - self.production)

    @property
    def self_consumption(self) -> int:
        return min(self.production, self.consumption)

    def meter(self, name: str) -> int:
        return {
            "Production": self.production,
            "Consumption": self.consumption,
            "SelfConsumption": self.self_consumption,
            "FeedIn": self.feed_in,
            "Purchased": self.purchased,
        }[name]


class _ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(status)
        self.status, self.title, self.detail = status, title, detail


def _parse_date(raw: str | None, name: str) -> date:
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        raise _ApiError(400, "Bad Request", f"{name} must be YYYY-MM-DD, got {raw!r}") from None


def _parse_time(raw: str | None, name: str) -> datetime:
    try:
        return datetime.strptime(raw or "", TIME_FORMAT)
    except ValueError:
        raise _ApiError(
            400, "Bad Request", f"{name} must be 'YYYY-MM-DD hh:mm:ss', got {raw!r}"
        ) from None


def add_months(t: datetime, months: int) -> datetime:
    """Same day and time `months` later, clamped to the month's last day (Jan 31 -> Feb 28)."""
    index = t.year * 12 + t.month - 1 + months
    year, month = divmod(index, 12)
    first_next = datetime(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    last_day = (first_next - timedelta(days=1)).day
    return t.replace(year=year, month=month + 1, day=min(t.day, last_day))


@lru_cache(maxsize=4096)
def site_quarters(spec: SystemSpec, day: date) -> tuple[Quarter, ...]:
    """The model's quarters of one local day (92, 96 or 100 of them), in time order."""
    start, end = model.local_day_bounds(spec, day)
    zone = ZoneInfo(spec.timezone)
    produced = dict(
        (i["end_at"], i["wh_del"]) for i in model.meter_production_intervals(spec, start, end)
    )
    out = []
    for item in model.consumption_intervals(spec, start, end):
        q_start = item["end_at"] - QUARTER
        label = datetime.fromtimestamp(q_start, zone).replace(tzinfo=None)
        prod = produced.get(item["end_at"], 0) if spec.has_production_meter else 0
        out.append(Quarter(q_start, label, prod, item["enwh"]))
    return tuple(out)


@lru_cache(maxsize=16384)
def _day_totals(spec: SystemSpec, day: date) -> dict[str, int]:
    quarters = site_quarters(spec, day)
    return {name: sum(q.meter(name) for q in quarters) for name in METERS}


class SolarEdgeSimulator(ArmsHttpFaults, WsgiSimulator):
    thread_name = "solaredge-sim"
    fault_body = '{"energyDetails": {"timeUnit": "QUARTER_OF_AN_HOUR", "unit": "Wh", "mete'

    def __init__(
        self,
        sites: list[SystemSpec] | None = None,
        *,
        api_key: str = "SIMV2KEY0123456789ABCDEFGHIJKLMN",
        v1_api_key: str = "SIMV1KEY0123456789ABCDEFGHIJKLMN",
        serve_v1: bool = False,
        per_day: int = PER_DAY,
        max_concurrent: int = MAX_CONCURRENT,
        data_lag: int = 900,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sites = {s.system_id: s for s in (sites or [SystemSpec()])}
        self.api_key, self.v1_api_key, self.serve_v1 = api_key, v1_api_key, serve_v1
        self.per_day, self.max_concurrent, self.data_lag = per_day, max_concurrent, data_lag
        self.clock = clock
        self.stats = SolarEdgeStats()
        self.base_url = ""
        self._lock = threading.Lock()
        self._used: Counter[tuple[str, str, date]] = Counter()  # (kind, who, UTC day)
        self._in_flight = 0
        ArmsHttpFaults.__init__(self)
        self._slow: list[list[float]] = []
        self.app = self._build_app()

    # ---- test controls ---------------------------------------------------------------------

    def slow_next(self, seconds: float, count: int = 1) -> None:
        with self._lock:
            self._slow.append([seconds, count])

    def set_used_today(self, n: int, key: str | None = None) -> None:
        """Pretend `n` requests of today's quota were already spent with `key`."""
        with self._lock:
            self._used[("key", key or self.api_key, self._quota_day())] = n

    def true_energy(self, site_id: int, day: date) -> dict[str, int]:
        """Wh of the site's whole local `day`, straight from the model (not through HTTP)."""
        totals = _day_totals(self._spec(site_id), day)
        return {
            "produced_wh": totals["Production"],
            "consumed_wh": totals["Consumption"],
            "exported_wh": totals["FeedIn"],
            "imported_wh": totals["Purchased"],
            "self_consumed_wh": totals["SelfConsumption"],
        }

    # ---- gate: faults, keys, limits --------------------------------------------------------

    def _quota_day(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def _take_delay(self) -> float:
        with self._lock:
            for slow in self._slow:
                if slow[1] > 0:
                    slow[1] -= 1
                    self._slow = [s for s in self._slow if s[1] > 0]
                    return slow[0]
        return 0.0

    def _authenticate(self) -> str:
        """The key that was accepted; raises for a missing, wrong or retired one."""
        header = request.headers.get("X-API-Key")
        query = request.args.get("api_key")
        if header is not None:
            if header != self.api_key:
                self.stats.refused += 1
                raise _ApiError(401, "Unauthorized", "Invalid API key")
            return header
        if query is not None:
            if not self.serve_v1:
                self.stats.gone += 1
                raise _ApiError(
                    410,
                    "Gone",
                    "Monitoring API V1 was retired on 2026-11-03; use a V2 API key from the "
                    "SolarEdge Developer Platform in the X-API-Key header",
                )
            if query != self.v1_api_key:
                self.stats.refused += 1
                raise _ApiError(403, "Forbidden", "Invalid token")
            return query
        self.stats.refused += 1
        raise _ApiError(401, "Unauthorized", "API key missing")

    def _count(self, key: str, site_id: str) -> None:
        day = self._quota_day()
        with self._lock:
            by_key, by_site = ("key", key, day), ("site", site_id, day)
            if self._used[by_key] >= self.per_day or self._used[by_site] >= self.per_day:
                self.stats.throttled += 1
                raise _ApiError(
                    429,
                    "Too Many Requests",
                    f"Daily limit of {self.per_day} requests per key and per site exceeded",
                )
            self._used[by_key] += 1
            self._used[by_site] += 1

    def _gate(self) -> BaseResponse | None:
        g.now = self.clock()
        g.in_flight = False
        if not request.path.startswith("/site/") or request.url_rule is None:
            return None
        with self._lock:
            if self._in_flight >= self.max_concurrent:
                self.stats.throttled += 1
                raise _ApiError(
                    429, "Too Many Requests", f"More than {self.max_concurrent} concurrent calls"
                )
            self._in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
            g.in_flight = True
        if delay := self._take_delay():
            time.sleep(delay)
        key = self._authenticate()
        site_id = (request.view_args or {}).get("site_id", "")
        self._count(key, str(site_id))
        self.stats.requests[request.endpoint or "unknown"] += 1
        answer = self._fault_answer(request.path)
        if answer is not None:
            self.stats.faults_served += 1
            return answer
        return None

    def _release(self, _exc: BaseException | None) -> None:
        if g.get("in_flight"):
            with self._lock:
                self._in_flight -= 1

    # ---- data ------------------------------------------------------------------------------

    def _spec(self, site_id: int) -> SystemSpec:
        spec = self.sites.get(site_id)
        if spec is None:
            raise _ApiError(403, "Forbidden", f"Site {site_id} is not accessible with this key")
        return spec

    def _cutoff(self) -> int:
        return int(g.now) - self.data_lag

    def _quarters(self, spec: SystemSpec, first: datetime, last: datetime) -> Iterator[Quarter]:
        """Quarters whose naive label lies in [first, last], in time order."""
        day = first.date()
        while day <= last.date():
            for q in site_quarters(spec, day):
                if first <= q.label <= last:
                    yield q
            day += timedelta(days=1)

    def _available(self, spec: SystemSpec, q: Quarter) -> bool:
        installed = model.local_day_bounds(spec, spec.operational_date)[0]
        return installed <= q.start and q.start + QUARTER <= self._cutoff()

    def _daily(self, spec: SystemSpec, day: date, meter: str) -> float | None:
        start, end = model.local_day_bounds(spec, day)
        installed = model.local_day_bounds(spec, spec.operational_date)[0]
        if start >= installed and end <= self._cutoff():  # a whole past day: the cached sum
            return float(_day_totals(spec, day)[meter])
        quarters = [q for q in site_quarters(spec, day) if self._available(spec, q)]
        if not quarters:
            return None
        return float(sum(q.meter(meter) for q in quarters))

    def _energy(self, site_id: int) -> dict[str, Any]:
        spec = self._spec(site_id)
        unit = request.args.get("timeUnit", "")
        start = _parse_date(request.args.get("startDate"), "startDate")
        end = _parse_date(request.args.get("endDate"), "endDate")
        if end < start:
            raise _ApiError(400, "Bad Request", "endDate is before startDate")
        values: list[dict[str, Any]] = []
        if unit == "DAY":
            if add_months(datetime.combine(start, datetime.min.time()), 12).date() < end:
                raise _ApiError(403, "Forbidden", "timeUnit=DAY is limited to one year")
            day = start
            while day <= end:
                stamp = datetime.combine(day, datetime.min.time()).strftime(TIME_FORMAT)
                values.append({"date": stamp, "value": self._daily(spec, day, "Production")})
                day += timedelta(days=1)
        elif unit == "QUARTER_OF_AN_HOUR":
            if add_months(datetime.combine(start, datetime.min.time()), 1).date() < end:
                raise _ApiError(
                    403, "Forbidden", "timeUnit=QUARTER_OF_AN_HOUR is limited to one month"
                )
            last = datetime.combine(end, datetime.max.time())
            for q in self._quarters(spec, datetime.combine(start, datetime.min.time()), last):
                value = float(q.production) if self._available(spec, q) else None
                values.append({"date": q.label.strftime(TIME_FORMAT), "value": value})
        else:
            raise _ApiError(400, "Bad Request", f"timeUnit {unit!r} is not simulated")
        return {"energy": {"timeUnit": unit, "unit": "Wh", "measuredBy": "METER", "values": values}}

    def _energy_details(self, site_id: int) -> dict[str, Any]:
        spec = self._spec(site_id)
        unit = request.args.get("timeUnit", "DAY")
        first = _parse_time(request.args.get("startTime"), "startTime")
        last = _parse_time(request.args.get("endTime"), "endTime")
        if last < first:
            raise _ApiError(400, "Bad Request", "endTime is before startTime")
        asked = [m for m in request.args.get("meters", ",".join(METERS)).split(",") if m]
        unknown = [m for m in asked if m not in METERS]
        if unknown:
            raise _ApiError(400, "Bad Request", f"Unknown meters: {', '.join(unknown)}")
        present = [m for m in asked if m == "Production" or spec.has_consumption_meter]
        rows: dict[str, list[dict[str, Any]]] = {m: [] for m in present}
        if unit == "QUARTER_OF_AN_HOUR":
            if add_months(first, 1) < last:
                raise _ApiError(
                    403, "Forbidden", "timeUnit=QUARTER_OF_AN_HOUR is limited to one month"
                )
            for q in self._quarters(spec, first, last):
                ok = self._available(spec, q)
                for m in present:
                    item: dict[str, Any] = {"date": q.label.strftime(TIME_FORMAT)}
                    if ok:
                        item["value"] = float(q.meter(m))
                    rows[m].append(item)
        elif unit == "DAY":
            if add_months(first, 12) < last:
                raise _ApiError(403, "Forbidden", "timeUnit=DAY is limited to one year")
            day = first.date()
            while day <= last.date():
                stamp = datetime.combine(day, datetime.min.time()).strftime(TIME_FORMAT)
                for m in present:
                    item = {"date": stamp}
                    value = self._daily(spec, day, m)
                    if value is not None:
                        item["value"] = value
                    rows[m].append(item)
                day += timedelta(days=1)
        else:
            raise _ApiError(400, "Bad Request", f"timeUnit {unit!r} is not simulated")
        meters = [{"type": m, "values": rows[m]} for m in present]
        return {"energyDetails": {"timeUnit": unit, "unit": "Wh", "meters": meters}}

    def _overview(self, site_id: int) -> dict[str, Any]:
        spec = self._spec(site_id)
        zone = ZoneInfo(spec.timezone)
        now_local = datetime.fromtimestamp(g.now, zone)
        today = now_local.date()
        per_day: dict[date, float] = {}

        def this_month(d: date) -> bool:
            return (d.year, d.month) == (today.year, today.month)

        day = spec.operational_date
        while day <= today:
            per_day[day] = self._daily(spec, day, "Production") or 0.0
            day += timedelta(days=1)
        slot = int(g.now) // QUARTER * QUARTER
        current = next(iter(self._quarters_at(spec, slot)), None)
        last_update = datetime.fromtimestamp(self._cutoff() // QUARTER * QUARTER, zone)
        return {
            "overview": {
                "lastUpdateTime": last_update.replace(tzinfo=None).strftime(TIME_FORMAT),
                "lifeTimeData": {"energy": sum(per_day.values())},
                "lastYearData": {
                    "energy": sum(v for d, v in per_day.items() if d.year == today.year)
                },
                "lastMonthData": {"energy": sum(v for d, v in per_day.items() if this_month(d))},
                "lastDayData": {"energy": per_day.get(today, 0.0)},
                "currentPower": {"power": float(current.production * 4) if current else 0.0},
                "measuredBy": "METER",
            }
        }

    def _quarters_at(self, spec: SystemSpec, start: int) -> list[Quarter]:
        day = model.local_date(spec, start)
        return [q for q in site_quarters(spec, day) if q.start == start]

    # ---- app -------------------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.json.sort_keys = False  # type: ignore[attr-defined]
        self.install_misbehaviour(app)
        app.before_request(self._gate)
        app.teardown_request(self._release)

        @app.errorhandler(_ApiError)
        def _api_err(err: _ApiError) -> Response:
            return _problem(err.status, err.title, err.detail)

        @app.errorhandler(HTTPException)
        def _http_err(err: HTTPException) -> Response:
            status = err.code or 500
            return _problem(status, err.name, err.description or "")

        @app.get("/site/<int:site_id>/energy", endpoint="energy")
        def energy(site_id: int) -> Response:
            return _json(self._energy(site_id))

        @app.get("/site/<int:site_id>/energyDetails", endpoint="energyDetails")
        def energy_details(site_id: int) -> Response:
            return _json(self._energy_details(site_id))

        @app.get("/site/<int:site_id>/overview", endpoint="overview")
        def overview(site_id: int) -> Response:
            return _json(self._overview(site_id))

        return app


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json;charset=UTF-8")


def _problem(status: int, title: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(json.dumps(body), status, content_type="application/problem+json")
