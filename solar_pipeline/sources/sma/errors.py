"""Errors of the SMA path. Messages say what to fix and name variables, never tokens or secrets."""

from __future__ import annotations

CLIENT_ID_VAR = "SMA_CLIENT_ID"
CLIENT_SECRET_VAR = "SMA_CLIENT_SECRET"


def reconsent_hint(plant_id: str | None = None) -> str:
    """What a person does when the owner's consent is missing or was revoked."""
    site = plant_id if plant_id else "<id>"
    return (
        f"Run `solar-pipeline sma-consent --site {site}` and have the plant owner approve the "
        "e-mail SMA sends to their Sunny Portal address; the consent then lasts until the owner "
        "revokes it."
    )


class SmaError(RuntimeError):
    """Base class of every SMA failure."""


class SmaAuthError(SmaError):
    """The app credentials (client id/secret) were refused, or a fresh token still gets 401."""


class SmaConsentRequired(SmaError):
    """The plant owner has not (or no longer) consented: only the owner, by e-mail, can fix it."""

    def __init__(self, reason: str, plant_id: str | None = None, state: str | None = None):
        super().__init__(f"SMA: {reason}. {reconsent_hint(plant_id)}")
        self.plant_id = plant_id
        self.state = state


class SmaConsentPending(SmaConsentRequired):
    """Consent was requested but the owner has not approved the e-mail yet."""


class SmaRateLimited(SmaError):
    """SMA answered 429: the credential's requests for the current 5-minute window are spent."""

    def __init__(self, message: str, retry_after_s: float | None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SmaResponseError(SmaError):
    """An HTTP error status other than auth, consent and limits; the body excerpt says why."""

    def __init__(self, endpoint: str, status: int | None, detail: str) -> None:
        super().__init__(f"SMA {endpoint} answered {status}: {detail}")
        self.endpoint = endpoint
        self.status = status


class SmaTransportError(SmaError):
    """No HTTP response at all (connection refused, timeout) after the retries."""


class ParseError(SmaError):
    """A body that is not the JSON shape the parser knows; its raw text is kept by the caller."""
