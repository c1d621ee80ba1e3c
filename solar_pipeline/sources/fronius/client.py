"""Fronius Solar API v1 client: plain HTTP on the LAN, every answer recorded before parsing.

Facts from the Solar API v1 documentation (42,0410,2012): no authentication ever (FAQ 5); base
path /solar_api/v1/; at most one request per second (FAQ 7); archive requests not in parallel
and 120 s apart (§2.6); a request a device does not offer answers HTTP 404, as does every
request on a GEN24 whose Solar API is switched off in its web UI (§3); GEN24/Tauro have no
archive (§5). The archive's longest span per request is not in the documentation: peers use
15-16 days, so requests are split into `max_archive_days` (16) chunks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

import requests

from solar_pipeline.sources.fronius.errors import (
    FroniusError,
    FroniusUnreachable,
    FroniusUnsupported,
)
from solar_pipeline.sources.fronius.parse import PRODUCED_CHANNEL, checked_data
from solar_pipeline.sources.http import (
    RecordsRetriedAttempts,
    build_session,
    receive,
    set_retry_observer,
)

BASE_PATH = "/solar_api/v1/"
POWER_FLOW = "GetPowerFlowRealtimeData.fcgi"
INVERTER = "GetInverterRealtimeData.cgi"
METER = "GetMeterRealtimeData.cgi"
ARCHIVE = "GetArchiveData.cgi"
MAX_ARCHIVE_DAYS = 16
ARCHIVE_SPACING_S = 120.0
REALTIME_SPACING_S = 1.0


@dataclass(frozen=True)
class FroniusResponse:
    """One HTTP exchange as it happened; the query holds no secret (the API has none)."""

    endpoint: str
    query: str
    fetched_at: float
    status: int | None
    content_type: str | None
    body: str | None
    elapsed_ms: float
    error: str | None = None


class FroniusClient(RecordsRetriedAttempts):
    def __init__(
        self,
        url: str,
        tz: str,
        record: Callable[[FroniusResponse], None],
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 2,
        backoff: float = 1.0,
        realtime_spacing_s: float = REALTIME_SPACING_S,
        archive_spacing_s: float = ARCHIVE_SPACING_S,
        max_archive_days: int = MAX_ARCHIVE_DAYS,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.tz = tz
        self.record = record
        self.timeout = timeout
        self.realtime_spacing_s = realtime_spacing_s
        self.archive_spacing_s = archive_spacing_s
        self.max_archive_days = max_archive_days
        self.clock, self.monotonic, self.sleep = clock, monotonic, sleep
        self.session = build_session(backoff, retries)
        set_retry_observer(self.session, self._on_retried_attempt)
        # The device counts requests, not callers: one lock keeps the spacing across threads.
        self._lock = threading.Lock()
        self._last_any: float | None = None
        self._last_archive: float | None = None
        self._pending: tuple[str, str, float] | None = None

    def __repr__(self) -> str:
        return f"FroniusClient(url={self.url!r})"

    # -- requests --------------------------------------------------------------------------

    def power_flow(self) -> FroniusResponse:
        return self.fetch(POWER_FLOW)

    def inverter_system(self) -> FroniusResponse:
        return self.fetch(INVERTER, {"Scope": "System"})

    def meter_system(self) -> FroniusResponse:
        return self.fetch(METER, {"Scope": "System"})

    def archive(
        self,
        start: date,
        end: date,
        series_type: str = "Detail",
        channel: str = PRODUCED_CHANNEL,
    ) -> list[FroniusResponse]:
        """Local days start..end inclusive, in chunks of at most max_archive_days.

        Dates without a time are the PV system's local days by the documentation, so the
        device itself handles the 23- and 25-hour days.
        """
        if end < start:
            raise ValueError(f"archive end {end} is before start {start}")
        if series_type not in ("Detail", "DailySum"):
            raise ValueError(f"series_type must be Detail or DailySum, got {series_type!r}")
        out = []
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + timedelta(days=self.max_archive_days - 1))
            params = {
                "Scope": "System",
                "StartDate": chunk_start.isoformat(),
                "EndDate": chunk_end.isoformat(),
                "Channel": channel,
                "SeriesType": series_type,
                "HumanReadable": "False",
            }
            out.append(self.fetch(ARCHIVE, params))
            chunk_start = chunk_end + timedelta(days=1)
        return out

    def fetch(self, endpoint: str, params: dict[str, str] | None = None) -> FroniusResponse:
        """GET, record, then check: raises for what a person must fix, else the response.

        Status.Code != 0 raises FroniusApiError and a body that is not the envelope raises
        FroniusParseError, both after the answer was recorded.
        """
        resp = self.get(endpoint, params)
        self.check(resp)
        return resp

    def get(self, endpoint: str, params: dict[str, str] | None = None) -> FroniusResponse:
        """One request, spaced as documented, recorded whatever happens; never raises."""
        query = urlencode(params or {})
        with self._lock:
            self._wait(endpoint == ARCHIVE)
            try:
                return self._send(endpoint, query)
            finally:
                now = self.monotonic()
                self._last_any = now
                if endpoint == ARCHIVE:
                    self._last_archive = now

    def check(self, resp: FroniusResponse) -> None:
        where = f"Fronius at {self.url} (FRONIUS_URL)"
        if resp.status is None:
            raise FroniusUnreachable(
                f"{where} did not answer {resp.endpoint} ({resp.error}). Check FRONIUS_URL "
                "(http://<datamanager or inverter IP>) and that the device is on the LAN."
            )
        if resp.error is not None:  # a redirect (not followed) or an answer over the size cap
            raise FroniusError(f"{where}: {resp.endpoint} {resp.error}")
        if resp.status == 404:
            if resp.endpoint == ARCHIVE:
                raise FroniusUnsupported(
                    f"{where} has no {ARCHIVE} (HTTP 404): GEN24/Tauro/Verto keep no archive. "
                    "Use the E_Total deltas of GetPowerFlowRealtimeData (realtime polling) "
                    "for its energy instead."
                )
            raise FroniusUnsupported(
                f"{where} answered HTTP 404 for {resp.endpoint}: the Solar API is switched "
                "off (GEN24/Tauro: enable it in the inverter's web UI under Communication > "
                "Solar API) or FRONIUS_URL does not point at a Fronius device."
            )
        if resp.status != 200:
            raise FroniusError(f"{where} answered HTTP {resp.status} for {resp.endpoint}")
        checked_data(resp.body, resp.endpoint, self.tz)

    # -- internals -------------------------------------------------------------------------

    def _wait(self, archive: bool) -> None:
        now = self.monotonic()
        waits = []
        if self._last_any is not None:
            waits.append(self._last_any + self.realtime_spacing_s - now)
        if archive and self._last_archive is not None:
            waits.append(self._last_archive + self.archive_spacing_s - now)
        delay = max(waits, default=0.0)
        if delay > 0:
            self.sleep(delay)

    def _send(self, endpoint: str, query: str) -> FroniusResponse:
        started = self.clock()
        self._pending = (endpoint, query, started)
        url = f"{self.url}{BASE_PATH}{endpoint}" + (f"?{query}" if query else "")
        try:
            got = receive(self.session, "GET", url, timeout=self.timeout)
        except requests.RequestException as exc:
            return self._record(endpoint, query, started, None, None, None, type(exc).__name__)
        finally:
            self._pending = None
        return self._record(
            endpoint, query, started, got.status, got.content_type, got.body, got.error
        )

    def _record(
        self,
        endpoint: str,
        query: str,
        started: float,
        status: int | None,
        content_type: str | None,
        body: str | None,
        error: str | None = None,
    ) -> FroniusResponse:
        # Retried attempts (5xx, connection errors) come here too: each is an answer the
        # caller must be able to store verbatim.
        resp = FroniusResponse(
            endpoint,
            query,
            started,
            status,
            content_type,
            body,
            (self.clock() - started) * 1000,
            error,
        )
        self.record(resp)
        return resp


__all__ = ["FroniusClient", "FroniusResponse"]
