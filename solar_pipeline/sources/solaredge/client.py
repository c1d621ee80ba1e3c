"""The SolarEdge monitoring client: key auth, daily budget, and every answer recorded verbatim.

Each HTTP answer (also error pages, 429s and retried 5xx attempts) goes to `record` before it
is judged, so the caller can store it raw and parse it later. Dates sent are site-local and
naive, as SolarEdge documents; the client never converts them to UTC (field notes §1.12).

Auth: `auth="v2"` sends the key in the `X-API-Key` header, the V2 way. `auth="v1"` sends the
retired `api_key` query parameter, kept only for old keys or a V1-speaking proxy; it never goes
into a recorded query, a log line or an error message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import requests

from solar_pipeline.sources.http import (
    RecordsRetriedAttempts,
    build_session,
    excerpt,
    json_or_none,
    receive,
    set_retry_observer,
)
from solar_pipeline.sources.solaredge.budget import DailyBudget
from solar_pipeline.sources.solaredge.errors import (
    DailyLimitReached,
    SolarEdgeAuthError,
    SolarEdgeResponseError,
    SolarEdgeTransportError,
)

DEFAULT_URL = "https://monitoringapi.solaredge.com"
METERS = ("Production", "Consumption", "SelfConsumption", "FeedIn", "Purchased")
V1_RETIRED = "2026-11-03"

Auth = Literal["v1", "v2"]


@dataclass(frozen=True)
class SolarEdgeResponse:
    """One answer (or its absence) exactly as received; `query` never holds the key."""

    site_id: int
    endpoint: str
    query: dict[str, str]
    fetched_at: float
    status: int | None
    content_type: str | None
    body: str | None
    elapsed_ms: float
    error: str | None = None
    covers: tuple[date, date] | None = None  # local days, inclusive


def add_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (Jan 31 + 1 -> Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    nxt = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return day.replace(year=year, month=month + 1, day=min(day.day, (nxt - timedelta(days=1)).day))


def windows(first: date, last: date, months: int) -> list[tuple[date, date]]:
    """[first, last] cut into inclusive spans of at most `months` calendar months each."""
    out = []
    while first <= last:
        end = min(add_months(first, months) - timedelta(days=1), last)
        out.append((first, end))
        first = end + timedelta(days=1)
    return out


class SolarEdgeClient(RecordsRetriedAttempts):
    def __init__(
        self,
        site_id: int,
        api_key: str,
        record: Callable[[SolarEdgeResponse], None],
        *,
        base_url: str = DEFAULT_URL,
        auth: Auth = "v2",
        key_name: str = "SOLAREDGE_API_KEY",
        budget: DailyBudget | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 45.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if auth not in ("v1", "v2"):
            raise ValueError(f"auth must be 'v1' or 'v2', got {auth!r}")
        self.site_id = site_id
        self._api_key = api_key
        self.record = record
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.key_name = key_name  # named in error messages so the reader knows what to fix
        self.budget = budget
        self.session = session or build_session()
        self.timeout = timeout
        self.clock = clock
        self.requests_sent = 0
        self._pending: tuple[str, dict[str, str], tuple[date, date] | None, float] | None = None
        set_retry_observer(self.session, self._on_retried_attempt)

    def __repr__(self) -> str:
        return f"SolarEdgeClient(base_url={self.base_url!r}, site_id={self.site_id}, {self.auth})"

    # ---- endpoints -------------------------------------------------------------------------

    @staticmethod
    def requests_needed(first: date, last: date, details: bool = True, daily: bool = True) -> int:
        """Calls a backfill of [first, last] costs: check it against the budget up front."""
        n = len(windows(first, last, 12)) if daily else 0
        return n + (len(windows(first, last, 1)) if details else 0)

    def site_energy_days(self, first: date, last: date) -> list[SolarEdgeResponse]:
        """Production Wh per local day, `timeUnit=DAY`, a year (at most) per call."""
        return [
            self.get(
                "energy",
                {"timeUnit": "DAY", "startDate": a.isoformat(), "endDate": b.isoformat()},
                covers=(a, b),
            )
            for a, b in windows(first, last, 12)
        ]

    def energy_details(
        self, first: date, last: date, meters: Iterable[str] = METERS
    ) -> list[SolarEdgeResponse]:
        """15-minute Wh per meter for local days [first, last], a month (at most) per call."""
        wanted = ",".join(meters)
        out = []
        for a, b in windows(first, last, 1):
            params = {
                "timeUnit": "QUARTER_OF_AN_HOUR",
                # Site-local wall-clock times, as the API wants them; the last second of `b`
                # keeps the next day's first quarter out.
                "startTime": f"{a.isoformat()} 00:00:00",
                "endTime": f"{b.isoformat()} 23:59:59",
                "meters": wanted,
            }
            out.append(self.get("energyDetails", params, covers=(a, b)))
        return out

    def overview(self) -> SolarEdgeResponse:
        return self.get("overview", {})

    # ---- transport -------------------------------------------------------------------------

    def get(
        self,
        endpoint: str,
        params: dict[str, str],
        covers: tuple[date, date] | None = None,
    ) -> SolarEdgeResponse:
        """GET /site/{id}/{endpoint}; recorded before it is judged; returns only a 2xx answer."""
        if self.budget is not None:
            self.budget.before_request()
        resp = self._send(endpoint, dict(params), covers)
        self._judge(resp)
        return resp

    def _send(
        self, endpoint: str, params: dict[str, str], covers: tuple[date, date] | None
    ) -> SolarEdgeResponse:
        url = f"{self.base_url}/site/{self.site_id}/{endpoint}"
        headers: dict[str, str] = {}
        sent = dict(params)
        if self.auth == "v2":
            headers["X-API-Key"] = self._api_key
        else:
            sent["api_key"] = self._api_key
        started = self.clock()
        self._pending = (endpoint, params, covers, started)
        try:
            got = receive(
                self.session,
                "GET",
                url,
                params=sent,
                headers=headers,
                timeout=self.timeout,
                secrets=(self._api_key,),
            )
        except requests.RequestException as exc:
            # Only the class name: requests' messages carry the URL, and with V1 the key.
            self._record(endpoint, params, covers, started, None, None, None, type(exc).__name__)
            raise SolarEdgeTransportError(
                f"SolarEdge {endpoint} for site {self.site_id}: no response after retries "
                f"({type(exc).__name__})"
            ) from None
        finally:
            self._pending = None
        return self._record(
            endpoint, params, covers, started, got.status, got.content_type, got.body, got.error
        )

    def _record(
        self,
        endpoint: str,
        params: dict[str, str],
        covers: tuple[date, date] | None,
        started: float,
        status: int | None,
        content_type: str | None,
        body: str | None,
        error: str | None = None,
    ) -> SolarEdgeResponse:
        self.requests_sent += 1
        if self.budget is not None and status is not None:
            self.budget.note_sent()
        resp = SolarEdgeResponse(
            site_id=self.site_id,
            endpoint=endpoint,
            query=dict(params),
            fetched_at=started,
            status=status,
            content_type=content_type,
            body=body,
            elapsed_ms=(self.clock() - started) * 1000,
            error=error,
            covers=covers,
        )
        self.record(resp)
        return resp

    # ---- judging ---------------------------------------------------------------------------

    def _judge(self, resp: SolarEdgeResponse) -> None:
        status = resp.status
        if status is not None and resp.error is not None:
            # A redirect (never followed: the key stays home) or an answer over the size cap.
            raise SolarEdgeResponseError(resp.endpoint, status, resp.error)
        if status is None or status < 400:
            return
        detail = self._detail(resp)
        where = f"site {self.site_id}"
        if status == 410 and self.auth == "v1":
            raise SolarEdgeAuthError(
                f"SolarEdge retired monitoring API V1 (the api_key query parameter) on "
                f"{V1_RETIRED} and answers 410 Gone for {where}. Create a V2 API key on the "
                f"SolarEdge Developer Platform, put it in {self.key_name} and use V2 auth "
                "(the X-API-Key header); V1 keys do not work with V2."
            )
        if status in (401, 403):
            style = "X-API-Key header (V2)" if self.auth == "v2" else "api_key parameter (V1)"
            raise SolarEdgeAuthError(
                f"SolarEdge refused the key in {self.key_name} for {where} "
                f"({status}: {detail}). Check that {self.key_name} holds a current API key "
                f"with access to site {self.site_id}, sent as the {style}."
            )
        if status == 429:
            raise DailyLimitReached(
                f"SolarEdge answered 429 for {where} ({detail}): the 300 daily requests of the "
                f"key in {self.key_name} or of the site are spent, or more than 3 calls ran at "
                "once. Nothing more is fetched; the next day's runs continue."
            )
        raise SolarEdgeResponseError(resp.endpoint, status, detail)

    def _detail(self, resp: SolarEdgeResponse) -> str:
        data = json_or_none(resp.body)
        text = ""
        if isinstance(data, dict):
            text = ": ".join(str(data[k]) for k in ("title", "detail", "message") if data.get(k))
        if not text:
            text = f"{resp.content_type or 'no content type'}: {excerpt(resp.body)}"
        # A server that echoes the request must not put the key into our messages.
        return text.replace(self._api_key, "***") if self._api_key else text
