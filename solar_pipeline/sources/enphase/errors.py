"""Errors of the Enphase cloud path. Messages say what to do and never carry a secret."""

from __future__ import annotations

from datetime import UTC, datetime

REAUTHORIZE_HINT = (
    "Re-authorize: run `solar-pipeline enphase-auth`, open the printed URL, approve, then run "
    "`solar-pipeline enphase-auth --code CODE` (or set ENPHASE_REFRESH_TOKEN to a fresh token "
    "and empty the token store)."
)

# What gets a pair back once a damaged token file is out of the way (see token_file.py).
STORE_REMEDY = (
    "restore the token file from a backup made after the last refresh (`solar-pipeline restore "
    "--from BACKUP_FOLDER --tokens-only`) or re-authorize (`solar-pipeline enphase-auth`, "
    "approve in the browser, then `solar-pipeline enphase-auth --code CODE`)."
)


class EnphaseError(RuntimeError):
    """Base class of every Enphase cloud failure."""


class ReauthorizationRequired(EnphaseError):
    """The stored refresh token was refused; only the owner's consent in a browser can fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Enphase refused the stored authorization ({reason}). {REAUTHORIZE_HINT}")


class EnphaseAuthError(EnphaseError):
    """A data call stays 401 with a freshly refreshed token."""


class QuotaExhausted(EnphaseError):
    """Enphase answered 429 for the month: nothing can be fetched until the period ends."""

    def __init__(self, period_end: int | None, plan_detail: str = "") -> None:
        until = (
            datetime.fromtimestamp(period_end, UTC).strftime("%Y-%m-%d %H:%M UTC")
            if period_end
            else "the start of next month"
        )
        super().__init__(
            f"Enphase monthly quota exhausted until {until}{plan_detail}. "
            "Runs will fail until then; lower the cadence or upgrade ENPHASE_PLAN."
        )
        self.period_end = period_end


class BudgetExceeded(EnphaseError):
    """Our own ledger says the request would exceed the plan's budget; nothing was sent."""


class EnphaseResponseError(EnphaseError):
    """An HTTP error status or a body that is not the JSON we expect.

    The full body is kept in raw.enphase_responses; the message carries a short excerpt.
    """

    def __init__(self, endpoint: str, status: int | None, detail: str, raw_id: int | None = None):
        where = f" (raw.enphase_responses id {raw_id})" if raw_id is not None else ""
        super().__init__(f"Enphase {endpoint} answered {status}: {detail}{where}")
        self.endpoint = endpoint
        self.status = status
        self.raw_id = raw_id


class EnphaseTransportError(EnphaseError):
    """No HTTP response at all (connection refused, timeout) after the retries."""


class ParseError(EnphaseError):
    """A JSON body whose shape does not match what the parser knows."""
