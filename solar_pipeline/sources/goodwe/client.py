"""The GoodWe SEMS portal client: app login, regional API base, and every answer recorded.

SEMS has no official homeowner API; this speaks the *unofficial* app API that community clients
use, so every fact below names where it comes from, and anything not seen there is "inferred".
Undocumented APIs change without notice: keep the raw answers (the `record` callback) so a
changed shape costs a re-parse, not lost days.

- Login: `POST https://www.semsportal.com/api/v2/Common/CrossLogin`, body `{account, pwd}`,
  header `Token: {"version": ..., "client": "ios", "language": "en"}`; the answer's `data`
  (uid, timestamp, token, ...) goes, JSON-encoded, into the `Token` header of later calls and
  its top-level `api` (a regional base such as `https://eu.semsportal.com/api/`) becomes the
  base of later calls. Sources: gw2pvo's `gw2pvo/gw_api.py` (https://github.com/markruys/gw2pvo;
  the current login/expiry code was read in its copy at
  https://github.com/darek-margas/aws-lambda-gw2pvo-uploader) and
  https://github.com/TimSoethout/goodwe-sems-home-assistant
  (`custom_components/sems/sems_api.py`, legacy login; it uses `v3/Common/CrossLogin`, gw2pvo
  `v2`, older clients `v1`). The legacy login takes the plain password (gw2pvo, TimSoethout);
  frontiermind's GoodWe fetcher (https://github.com/namhooh/frontiermind-app) sends its MD5 hex
  digest (`send_md5=True`). SEMS+ (`semsplus.goodwe.com`, base64 of the MD5 digest, signed
  requests) is a different API and not spoken here.
- Expiry: codes 100001 and 100002 mean "log in again" (gw2pvo `call()`); this client logs in
  once more and repeats the call once; a fresh token refused again is an auth error.
- Rate limit: code `GY0429`, after which TimSoethout's integration waits 300 s. HTTP 429 is
  treated alike (inferred). No limits are published.
- Success is code 0 (also "0"/"00000" in TimSoethout's list) with the payload in `data`.
- Daily energy: `v2/PowerStationMonitor/GetPowerStationPowerAndIncomeByDay` with
  `{powerstation_id, count, date: YYYY-MM-DD}` answers `data: [{d: "MM/DD/YYYY", p: kWh}, ...]`
  (gw2pvo `getActualKwh`, which looks the day up by `d`). `count` is the number of days ending
  at `date` (a comment in one community client: "1=current day, 2=current+previous"); another
  asks for `count: 31`. The maximum is not known: calls are cut into spans of at most
  MAX_DAYS_PER_CALL (inferred) days.
- Intraday power: gw2pvo and several JS clients POST `{id, date: YYYY-MM-DD}` to
  `v2/PowerStationMonitor/GetPowerStationPacByDayForApp` and read
  `data.pacs: [{date: "MM/DD/YYYY HH:MM:SS", pac: W}]`, site-local naive times. The field
  notes' `v2/PowerStation/GetPowerStationPac` (same payload) appears only in frontiermind's
  untested fetcher (reading `data.pac[{time, pac kW}]`), so the gw2pvo path is the default and
  `pac_endpoint` can switch it.

Secrets: the password and the token never go into a recorded query, a recorded body, a log
line or an error message. A login answer is recorded with every token/password value replaced
by "***" in place (the rest of the text stays byte for byte); the login query keeps the account
and shows "***" for the password.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from solar_pipeline.sources.goodwe.errors import (
    SemsAuthError,
    SemsRateLimited,
    SemsResponseError,
    SemsTransportError,
)
from solar_pipeline.sources.http import (
    REDACTED,
    ObservedRetry,
    RecordsRetriedAttempts,
    build_session,
    excerpt,
    json_or_none,
    receive,
    scrub,
    set_retry_observer,
)

DEFAULT_URL = "https://www.semsportal.com/api/"
LOGIN_PATH = "v2/Common/CrossLogin"
DAILY_PATH = "v2/PowerStationMonitor/GetPowerStationPowerAndIncomeByDay"
PAC_PATH = "v2/PowerStationMonitor/GetPowerStationPacByDayForApp"
PAC_PATH_FIELD_NOTES = "v2/PowerStation/GetPowerStationPac"
APP_VERSION = "v2.1.0"  # the app version TimSoethout (3.1.1) and others send varies; any works
SUCCESS_CODES = frozenset({"0", "00000"})
EXPIRED_CODES = frozenset({"100001", "100002"})
RATE_LIMIT_CODE = "GY0429"
RATE_LIMIT_BACKOFF_S = 300.0
MAX_DAYS_PER_CALL = 31  # inferred: the largest `count` a community client is seen to send
_SECRET_KEYS = frozenset({"token", "pwd", "password"})


@dataclass(frozen=True)
class SemsResponse:
    """One answer (or its absence) as received; never holds the password or a token."""

    station_id: str
    endpoint: str
    query: dict[str, str]
    fetched_at: float
    status: int | None
    content_type: str | None
    body: str | None
    elapsed_ms: float
    error: str | None = None
    covers: tuple[date, date] | None = None  # local days, inclusive


def sems_session(backoff_factor: float = 1.0, retries: int = 3) -> requests.Session:
    """build_session, but 5xx answers to POST are retried too.

    Every SEMS call is a POST, which urllib3 does not retry by default. SEMS reads and the
    login spend nothing single-use, so sending them again is safe (unlike an OAuth refresh).
    """
    session = build_session(backoff_factor=backoff_factor, retries=retries)
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter) and isinstance(adapter.max_retries, ObservedRetry):
            adapter.max_retries = adapter.max_retries.new(allowed_methods=None)
    return session


def day_spans(first: date, last: date, days: int = MAX_DAYS_PER_CALL) -> list[tuple[date, date]]:
    """[first, last] cut into inclusive spans of at most `days` days each."""
    out = []
    while first <= last:
        end = min(first + timedelta(days=days - 1), last)
        out.append((first, end))
        first = end + timedelta(days=1)
    return out


def answer_code(data: Any) -> str | None:
    """The SEMS `code` of a parsed answer as text (it comes as 0, "0" or "GY0429")."""
    if isinstance(data, dict) and data.get("code") is not None:
        return str(data["code"])
    return None


def _secret_values(data: Any) -> set[str]:
    """Every non-empty string under a token/password key, at any depth (walked without
    recursion: an answer nested almost as deep as json reads must not overflow the stack)."""
    found: set[str] = set()
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if str(key).lower() in _SECRET_KEYS and isinstance(value, str) and value:
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


class SemsClient(RecordsRetriedAttempts):
    def __init__(
        self,
        account: str,
        password: str,
        station_id: str,
        record: Callable[[SemsResponse], None],
        *,
        base_url: str = DEFAULT_URL,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 45.0),
        clock: Callable[[], float] = time.time,
        account_name: str = "GOODWE_ACCOUNT",
        password_name: str = "GOODWE_PASSWORD",
        send_md5: bool = False,
        pac_endpoint: str = PAC_PATH,
        app_version: str = APP_VERSION,
    ) -> None:
        self.account = account
        self._password = password
        self._md5 = hashlib.md5(password.encode(), usedforsecurity=False).hexdigest()
        self.station_id = station_id
        self.record = record
        self.base_url = base_url.rstrip("/") + "/"
        self.session = session or sems_session()
        self.timeout = timeout
        self.clock = clock
        # Named in error messages so the reader knows which setting to fix.
        self.account_name = account_name
        self.password_name = password_name
        self.send_md5 = send_md5
        self.pac_endpoint = pac_endpoint
        self.app_version = app_version
        self.api_base: str | None = None  # the regional base the last login named
        self.logins = 0
        self.requests_sent = 0
        self._token_data: dict[str, Any] | None = None
        self._pending: tuple[str, dict[str, str], tuple[date, date] | None, float] | None = None
        set_retry_observer(self.session, self._on_retried_attempt)

    def __repr__(self) -> str:
        return f"SemsClient(base_url={self.base_url!r}, station_id={self.station_id!r})"

    # ---- endpoints -------------------------------------------------------------------------

    @staticmethod
    def requests_needed(first: date, last: date, power: bool = True) -> int:
        """Data calls a backfill of [first, last] costs (plus a login per run or expiry)."""
        n = len(day_spans(first, last))
        return n + ((last - first).days + 1 if power else 0)

    def days_energy(self, first: date, last: date) -> list[SemsResponse]:
        """Production kWh per local day for [first, last]: one call per span of at most
        MAX_DAYS_PER_CALL days, asking for `count` days ending at the span's last day."""
        out = []
        for a, b in day_spans(first, last):
            payload = {
                "powerstation_id": self.station_id,
                "count": (b - a).days + 1,
                "date": b.isoformat(),
            }
            out.append(self.call(DAILY_PATH, payload, covers=(a, b)))
        return out

    def day_power(self, day: date) -> SemsResponse:
        """The intraday AC power samples of one local day (see the module notes on the path)."""
        payload = {"id": self.station_id, "date": day.isoformat()}
        return self.call(self.pac_endpoint, payload, covers=(day, day))

    # ---- session ---------------------------------------------------------------------------

    def login(self) -> SemsResponse:
        """CrossLogin; keeps the token and the regional API base. Raises on refusal."""
        pwd = self._md5 if self.send_md5 else self._password
        header = {"version": self.app_version, "client": "ios", "language": "en"}
        self._token_data, self.api_base = None, None
        self.logins += 1
        resp, raw = self._send(
            self.base_url,
            LOGIN_PATH,
            {"account": self.account, "pwd": pwd},
            None,
            token=json.dumps(header, separators=(",", ":")),
            shown={"account": self.account, "pwd": REDACTED},
        )
        if resp.status is not None and resp.error is not None:
            # A redirect (not followed: a 307 would re-send the password) or a huge answer.
            raise SemsResponseError(LOGIN_PATH, resp.status, None, resp.error)
        data = json_or_none(raw)
        code = answer_code(data)
        self._judge_limits(resp, code)
        if resp.status is not None and resp.status >= 400:
            raise SemsResponseError(LOGIN_PATH, resp.status, code, self._detail(resp))
        if not isinstance(data, dict):
            raise SemsResponseError(
                LOGIN_PATH, resp.status, None, f"not a JSON object: {self._detail(resp)}"
            )
        token_data = data.get("data")
        if (
            code not in SUCCESS_CODES
            or not isinstance(token_data, dict)
            or not isinstance(token_data.get("token"), str)
            or not token_data.get("token")
        ):
            raise SemsAuthError(
                f"GoodWe SEMS refused the login of the account in {self.account_name} "
                f"({code if code is not None else 'no code'}: {self._detail(resp)}). Check that "
                f"{self.password_name} holds the current password of that SEMS portal account "
                "(the app login, not a SEMS+ or installer OpenAPI credential)."
            )
        api = data.get("api") or token_data.get("api")
        self.api_base = self._checked_api(api, resp)
        self._token_data = token_data
        return resp

    def _checked_api(self, api: Any, resp: SemsResponse) -> str:
        """The regional base from a login answer, refused if it would leak the token."""
        if not isinstance(api, str) or not api:
            raise SemsResponseError(LOGIN_PATH, resp.status, "0", "the answer names no api base")
        scheme = urlsplit(api).scheme
        if scheme not in ("http", "https") or (
            scheme == "http" and urlsplit(self.base_url).scheme == "https"
        ):
            # The token would go in clear text (or somewhere odd): refuse rather than follow.
            raise SemsResponseError(
                LOGIN_PATH, resp.status, "0", f"refusing the api base {api!r} (scheme {scheme!r})"
            )
        return api.rstrip("/") + "/"

    # ---- transport -------------------------------------------------------------------------

    def call(
        self, endpoint: str, payload: dict[str, Any], covers: tuple[date, date] | None = None
    ) -> SemsResponse:
        """POST to the regional base; recorded before it is judged; on an expiry code logs in
        again and repeats the call once. Returns an answer with code 0, or one whose body is
        not a SEMS JSON answer at all (recorded; the parser reports what is wrong)."""
        if self._token_data is None:
            self.login()
        resp = self._data_call(endpoint, payload, covers)
        if self._code(resp) in EXPIRED_CODES:
            self.login()
            resp = self._data_call(endpoint, payload, covers)
            code = self._code(resp)
            if code in EXPIRED_CODES:
                raise SemsAuthError(
                    f"GoodWe SEMS refused a token it had just issued ({endpoint}, code {code}) "
                    f"for the account in {self.account_name}; the login works but the account "
                    f"may lack access to station {self.station_id}."
                )
        self._judge(resp)
        return resp

    def _data_call(
        self, endpoint: str, payload: dict[str, Any], covers: tuple[date, date] | None
    ) -> SemsResponse:
        assert self._token_data is not None and self.api_base is not None
        token = json.dumps(self._token_data, separators=(",", ":"))
        resp, _ = self._send(self.api_base, endpoint, payload, covers, token=token)
        return resp

    def _secrets(self) -> set[str]:
        found = {self._password, self._md5}
        if self._token_data is not None:
            found |= _secret_values(self._token_data)
        return found

    def _send(
        self,
        base: str,
        endpoint: str,
        payload: dict[str, Any],
        covers: tuple[date, date] | None,
        *,
        token: str,
        shown: dict[str, str] | None = None,
    ) -> tuple[SemsResponse, str | None]:
        """(the recorded, scrubbed answer, the raw text for the login to read its token)."""
        url = base + endpoint
        query = {k: str(v) for k, v in (shown if shown is not None else payload).items()}
        headers = {"Token": token, "Accept": "application/json"}
        started = self.clock()
        self._pending = (endpoint, query, covers, started)
        try:
            # Not scrubbed here: the login reads its token from `raw`; _record scrubs.
            got = receive(
                self.session, "POST", url, json=payload, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            # Only the class name: requests' messages may carry the URL and the request.
            self._record(endpoint, query, covers, started, None, None, None, type(exc).__name__)
            raise SemsTransportError(
                f"GoodWe SEMS {endpoint} for station {self.station_id}: no response after "
                f"retries ({type(exc).__name__})"
            ) from None
        finally:
            self._pending = None
        resp = self._record(
            endpoint, query, covers, started, got.status, got.content_type, got.body, got.error
        )
        return resp, got.body

    def _record(
        self,
        endpoint: str,
        query: dict[str, str],
        covers: tuple[date, date] | None,
        started: float,
        status: int | None,
        content_type: str | None,
        body: str | None,
        error: str | None = None,
    ) -> SemsResponse:
        self.requests_sent += 1
        secrets = self._secrets() | _secret_values(json_or_none(body))
        resp = SemsResponse(
            station_id=self.station_id,
            endpoint=endpoint,
            query=dict(query),
            fetched_at=started,
            status=status,
            content_type=content_type,
            body=scrub(body, secrets),
            elapsed_ms=(self.clock() - started) * 1000,
            error=scrub(error, secrets),
            covers=covers,
        )
        self.record(resp)
        return resp

    # ---- judging ---------------------------------------------------------------------------

    @staticmethod
    def _code(resp: SemsResponse) -> str | None:
        return answer_code(json_or_none(resp.body))

    def _judge_limits(self, resp: SemsResponse, code: str | None) -> None:
        if code == RATE_LIMIT_CODE or resp.status == 429:
            shown = f"code {code}" if code == RATE_LIMIT_CODE else "HTTP 429"
            raise SemsRateLimited(
                f"GoodWe SEMS answered {shown} to {resp.endpoint} for the account in "
                f"{self.account_name}: too many requests. Nothing more is fetched now; wait at "
                f"least {RATE_LIMIT_BACKOFF_S:.0f} s before the next call.",
                retry_after=RATE_LIMIT_BACKOFF_S,
            )

    def _judge(self, resp: SemsResponse) -> None:
        if resp.status is not None and resp.error is not None:
            # A redirect (not followed: the token stays home) or an answer over the size cap.
            raise SemsResponseError(resp.endpoint, resp.status, None, resp.error)
        code = self._code(resp)
        self._judge_limits(resp, code)
        if resp.status is not None and resp.status >= 400:
            raise SemsResponseError(resp.endpoint, resp.status, code, self._detail(resp))
        if code is not None and code not in SUCCESS_CODES:
            raise SemsResponseError(resp.endpoint, resp.status, code, self._detail(resp))

    def _detail(self, resp: SemsResponse) -> str:
        data = json_or_none(resp.body)
        text = ""
        if isinstance(data, dict):
            text = ": ".join(str(data[k]) for k in ("msg", "description", "message") if data.get(k))
        if not text:
            text = f"{resp.content_type or 'no content type'}: {excerpt(resp.body)}"
        # A server that echoes the request must not put a secret into our messages.
        return scrub(text, self._secrets()) or ""
