"""What each field of a sites-file entry may hold (sites.py reads the file, this checks it).

Errors name the field (`sites[2] (barn): ids.site_id`). A value is repeated in a message
only where it cannot be a secret and is short plain text (site_id, vendor, timezone); ids,
URLs, credential references and unknown names shaped like a key are described, not shown.

Credential references name variables, and a pasted secret must not pass for one. The rule:
- refused when loading: not UPPER_SNAKE_CASE with an underscore, longer than 64 characters,
  or with a part that no variable name has: letters and digits mixed other than a word
  followed by a number (SITE2, PV01), e.g. `L4QLVQ1LOKCQX2193_VSEICXW61NP6B1O` (SolarEdge keys
  are 32 upper-case letters and digits);
- accepted but never repeated when missing: one holding none of the words credential
  variables are named with (KEY, SECRET, PASSWORD, TOKEN, ID, ACCOUNT, ...). A passphrase
  such as `CORRECT_HORSE_BATTERY_STAPLE` has the shape of a variable name; the message then
  points at the field and suggests a name instead of repeating it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from solar_pipeline.settings import InvalidSettingError

MAX_REFERENCE = 64
_REFERENCE = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")
# A part of a variable name: a word with an optional number after it, a number (site ids
# and serials run to 12 digits), or anything of up to 3 characters (2FA, S3, V2G).
_NAME_PART = re.compile(r"[A-Z]{1,24}[0-9]{0,4}|[0-9]{1,12}|[A-Z0-9]{1,3}")
CREDENTIAL_WORDS = frozenset(
    {
        "KEY", "APIKEY", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "PIN", "TOKEN", "ID",
        "ACCOUNT", "USER", "USERNAME", "LOGIN", "EMAIL", "MAIL", "CLIENT", "AUTH", "CREDENTIAL",
        "CREDENTIALS",
    }
)  # fmt: skip
# Names (of keys) safe to repeat: lower-case words; a key pasted where a name belongs has
# digits or capitals.
_PLAIN_NAME = re.compile(r"[a-z][a-z_]{0,23}")
# Ids that go into API paths and bodies: no /, ?, # or spaces to steer a request elsewhere.
_DIGITS = re.compile(r"[0-9]{1,20}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
MAX_URL = 512


def _url_ok(value: str) -> bool:
    """http(s) with a host, and nothing that can carry a secret: no user or password, no query,
    no fragment (a key in a URL would be repeated in every message naming the device)."""
    if len(value) > MAX_URL or not value.isprintable() or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
    )


_URL = "an http(s) URL with a host and no user, password, query or fragment"
_KWP = re.compile(r"\d{1,5}(\.\d{1,3})?")
ID_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    # The array's peak power, which bounds the energy a vendor may claim (assets/vendor.py).
    "kwp": (
        lambda v: bool(_KWP.fullmatch(v)) and float(v) > 0,
        "the array's peak power in kW, e.g. 6.4",
    ),
    "system_id": (lambda v: bool(_DIGITS.fullmatch(v)), "the Enphase system id: digits"),
    "serial": (lambda v: bool(_DIGITS.fullmatch(v)), "the gateway's serial number: digits"),
    "site_id": (lambda v: bool(_DIGITS.fullmatch(v)), "the SolarEdge site id: digits"),
    "plant_id": (lambda v: bool(_TOKEN.fullmatch(v)), "the SMA plant id: letters, digits, _-"),
    "station_id": (
        lambda v: bool(_TOKEN.fullmatch(v)),
        "the SEMS station id (a UUID): letters, digits, _-",
    ),
    "url": (_url_ok, f"{_URL}, e.g. http://192.168.1.60"),
    "api_url": (_url_ok, f"{_URL}, e.g. https://monitoringapi.solaredge.com"),
    "auth": (lambda v: v in ("v1", "v2"), "v1 or v2"),
}
# Per vendor: the ids it needs, the ids it may have, and the credentials it reads.
VENDOR_IDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "enphase": ((), ("system_id",)),
    "envoy": ((), ("url", "serial")),
    "solaredge": (("site_id",), ("api_url", "auth", "kwp")),
    "sma": (("plant_id",), ("api_url", "kwp")),
    "goodwe": (("station_id",), ("api_url", "kwp")),
    "fronius": (("url",), ("kwp",)),
}
VENDOR_CREDENTIALS: dict[str, tuple[str, ...]] = {
    "enphase": ("api_key", "client_id", "client_secret"),
    "envoy": ("token",),
    "solaredge": ("api_key",),
    "sma": ("client_id", "client_secret"),
    "goodwe": ("account", "password"),
    "fronius": (),
}


def described(value: object) -> str:
    """What a value is, without its content."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return f"text of {len(value)} characters"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "a mapping"
    return "a list" if isinstance(value, list) else f"a {type(value).__name__}"


def names(keys: Iterable[Any]) -> str:
    """Unknown keys for a message: the plain ones by name, the others only counted."""
    keys = list(keys)
    plain = sorted(repr(k) for k in keys if isinstance(k, str) and _PLAIN_NAME.fullmatch(k))
    hidden = len(keys) - len(plain)
    return ", ".join(plain + ([f"{hidden} not shown (it may be a secret)"] if hidden else []))


def unknown_keys(where: str, what: str, given: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
    unknown = [k for k in given if k not in allowed]
    if unknown:
        word = "name" if len(unknown) == 1 else "names"
        takes = ", ".join(allowed) or "none"
        raise InvalidSettingError(
            f"{where}: {what}: unknown {word} {names(unknown)} (it takes: {takes})"
        )


def check_ids(where: str, vendor: str, ids: Mapping[Any, Any]) -> dict[str, str]:
    """The ids of a `vendor` site as text, each checked against what that vendor expects."""
    required, optional = VENDOR_IDS[vendor]
    unknown_keys(where, "ids", ids, required + optional)
    for name in required:
        if name not in ids:
            raise InvalidSettingError(f"{where}: ids.{name} is missing ({ID_RULES[name][1]})")
    checked: dict[str, str] = {}
    for name, value in ids.items():
        ok, expected = ID_RULES[name]
        # Text or a whole number only: a list (or a YAML alias bomb) is never turned into text.
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if name == "kwp" and isinstance(value, float) and math.isfinite(value):
            text = f"{value:g}"  # YAML reads 6.4 as a float
        if text is None or not ok(text):
            raise InvalidSettingError(
                f"{where}: ids.{name} must be {expected}; it is {described(value)} (not shown)"
            )
        checked[name] = text
    return checked


def reference_problem(ref: object) -> str | None:
    """Why `ref` cannot be a credential reference (a variable name), or None if it can."""
    if not isinstance(ref, str):
        return f"it is {described(ref)}"
    if not _REFERENCE.fullmatch(ref):
        return "it is not UPPER_SNAKE_CASE with an underscore"
    if len(ref) > MAX_REFERENCE:
        return f"it is longer than {MAX_REFERENCE} characters"
    if not all(_NAME_PART.fullmatch(part) for part in ref.split("_")):
        return "it mixes letters and digits the way generated keys do"
    return None


def nameable(ref: str) -> bool:
    """Whether a missing variable `ref` may be named in a message: it holds a word credential
    variables are named with, so it is not a passphrase that happens to look like a name."""
    return bool(CREDENTIAL_WORDS.intersection(ref.split("_")))


def suggested_name(vendor: str, site_id: str, name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"{vendor}_{site_id}_{name}".upper()).strip("_")
