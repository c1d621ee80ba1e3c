"""Errors of the local gateway path. Messages say what to do; none carries a token or password."""


class EnvoyError(RuntimeError):
    """Base class of local gateway failures."""


class UnsupportedFirmware(EnvoyError):
    """Firmware older than R3.9 has no JSON API (only an HTML page we do not scrape)."""


class CertificateChanged(EnvoyError):
    """The gateway's TLS certificate is not the pinned one."""


class EnvoyAuthError(EnvoyError):
    """The gateway refused our credentials."""


class EnvoyUnreachable(EnvoyError):
    """No answer from the gateway (connection refused, timeout, TLS failure) after retries."""
