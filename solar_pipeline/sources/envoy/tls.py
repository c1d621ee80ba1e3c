"""Certificate pinning for the gateway's self-signed TLS certificate.

Never `verify=False` silently: a connection is accepted only when the certificate's SHA-256
fingerprint (of the DER bytes) equals the pin. The pin is ENVOY_CERT_FINGERPRINT when set,
otherwise the fingerprint seen on first use, stored in SOLAR_DATA_DIR. urllib3 checks the pin
on every connection (`assert_fingerprint`), so the first-use download cannot be swapped later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

from solar_pipeline.sources.envoy.errors import CertificateChanged
from solar_pipeline.sources.files import private_dir


def normalise_fingerprint(value: str) -> str:
    fp = value.replace(":", "").replace(" ", "").strip().lower()
    if len(fp) != 64 or any(c not in "0123456789abcdef" for c in fp):
        raise ValueError(
            "ENVOY_CERT_FINGERPRINT must be a SHA-256 fingerprint: 64 hex digits, colons optional"
        )
    return fp


def server_fingerprint(url: str, timeout: float = 10.0) -> str:
    parts = urlsplit(url)
    if not parts.hostname:  # ssl would connect to localhost and pin its certificate instead
        raise ValueError(f"{url!r} has no host")
    pem = ssl.get_server_certificate((parts.hostname, parts.port or 443), timeout=timeout)
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


class CertificatePin:
    """Where the pin comes from: the setting, or the stored first-use fingerprint."""

    def __init__(self, url: str, configured: str | None, pin_file: Path) -> None:
        self.url = url
        self.configured = normalise_fingerprint(configured) if configured else None
        self.pin_file = pin_file

    def stored(self) -> str | None:
        try:
            return json.loads(self.pin_file.read_text())["fingerprint"]
        except (FileNotFoundError, KeyError, ValueError):
            return None

    def fingerprint(self) -> tuple[str, str]:
        """(fingerprint, how it was obtained: setting | stored | first-use)."""
        if self.configured:
            return self.configured, "setting"
        stored = self.stored()
        if stored:
            return stored, "stored"
        seen = server_fingerprint(self.url)
        private_dir(self.pin_file.parent)
        tmp = self.pin_file.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"url": self.url, "fingerprint": seen, "pinned_at": int(time.time())}, f)
        os.replace(tmp, self.pin_file)
        return seen, "first-use"

    def changed(self, expected: str) -> CertificateChanged:
        try:
            seen = server_fingerprint(self.url)
        except OSError:
            seen = "unknown"
        how = (
            "set ENVOY_CERT_FINGERPRINT to the new fingerprint"
            if self.configured
            else f"delete {self.pin_file} to trust the new certificate on the next poll, or set "
            "ENVOY_CERT_FINGERPRINT to it"
        )
        return CertificateChanged(
            f"The gateway at {self.url} presented a certificate with SHA-256 fingerprint {seen}, "
            f"not the pinned {expected}. If the gateway was replaced or reset, re-pin: {how}. "
            "Otherwise something else is answering at that address."
        )
