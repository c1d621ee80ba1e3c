"""What the vendor parsers share: reading the JSON text, naive site-local labels read as
instants, and the numbers they carry.

Python's json reads more than JSON: NaN, Infinity and -Infinity, 1e400 (as inf), 10**400 (as
an int no double holds), and it raises RecursionError, not ValueError, on an answer nested
deeper than the interpreter's recursion limit. `loads` turns that last one into the ValueError
every parser already handles; `number` and `nonnegative_number` refuse the others, so a broken
device's answer is flagged as malformed instead of failing the run.

SolarEdge, GoodWe and SMA send wall-clock times without an offset. On the 25-hour day the
repeated hour's labels come twice, in time order; on the 23-hour day the skipped hour has no
labels (a label inside it is kept, flagged). Reading them with the site's IANA zone, never
as UTC, is what puts each value in the right local day (field notes §1.12, §4.6).
"""

from __future__ import annotations

import json
import math
import reprlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# Short, bounded reprs of values in error messages: a value can be 900 levels deep or 4,000
# digits long, and the message ends up in parse_error and the run's log.
_SHOW = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHOW.maxlevel, _SHOW.maxlist, _SHOW.maxdict = 3, 4, 4
_SHOW.maxstring = _SHOW.maxlong = _SHOW.maxother = 40
# No meter of a solar site counts this high, in W, Wh or kWh (a 1 GW plant makes ~1e13 Wh a
# year); a float beyond it is a broken answer, and bounding it keeps every sum a parser makes
# of such values finite (1e308 + 1e308 is inf).
LARGEST = 1e18
# A naive or offset time this far inside datetime's range can be moved to any UTC offset.
_EARLIEST = datetime.min + timedelta(days=2)
_LATEST = datetime.max - timedelta(days=2)


def shown(value: Any) -> str:
    """`value` for an error message: at most ~40 characters, whatever its size or depth."""
    return _SHOW.repr(value)


def loads(body: str | bytes | bytearray) -> Any:
    """json.loads, with nesting too deep to read raised as a JSONDecodeError (a ValueError)
    instead of RecursionError, so a parser's `except ValueError` flags it like any bad JSON."""
    try:
        return json.loads(body)
    except RecursionError:
        doc = body if isinstance(body, str) else ""
        raise json.JSONDecodeError("nested too deeply to read", doc, 0) from None


def reason(exc: Exception, foreseen: type[Exception]) -> str:
    """Why an answer could not be read, for its raw row's parse_error: the parser's own message,
    or, for an exception the parser did not foresee, its type too, so the case can be taught to
    the parser. The text comes from the answer and the parser, never from a request, so no
    credential is in it."""
    return str(exc) if isinstance(exc, foreseen) else f"{type(exc).__name__}: {exc}"


def number(value: Any, what: str, error: type[Exception]) -> float | None:
    """null -> None; a finite int or float up to LARGEST in size -> float; anything else (text,
    bool, list, object, NaN, Infinity, 1e400, 10**400) raises `error` naming `what`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{what} = {shown(value)} is not a number")
    try:
        result = float(value)
    except OverflowError:  # an int of more than 308 digits
        result = math.inf
    if not math.isfinite(result):
        raise error(f"{what} = {shown(value)} is not a finite number (NaN, Infinity or 1e309+)")
    if abs(result) > LARGEST:
        raise error(f"{what} = {shown(value)} is too large to be a reading (over {LARGEST:g})")
    return result


def in_datetime_range(when: datetime) -> bool:
    """True when the (naive or aware) wall-clock time can be converted to UTC and back without
    leaving the years 1 to 9999; a label outside is not a time any device means."""
    return _EARLIEST <= when.replace(tzinfo=None) <= _LATEST


class NaiveLocaliser:
    """Naive local labels of one series, in time order -> UTC instants.

    A label of the repeated hour is the earlier instant the first time, the later the second;
    any further copy (or a second copy of any other label) gives None: the caller reports it
    and leaves the value out. A label in the skipped hour gives the instant it would be at the
    earlier offset, flagged `nonexistent_local_time`."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.seen: Counter[datetime] = Counter()

    def __call__(self, naive: datetime) -> tuple[datetime | None, tuple[str, ...]]:
        self.seen[naive] += 1
        times = self.seen[naive]
        early = naive.replace(tzinfo=self.zone, fold=0)
        late = naive.replace(tzinfo=self.zone, fold=1)
        instant = early.astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) != naive:
            # In the skipped hour of the 23-hour day: no such wall-clock time exists.
            return (instant, ("nonexistent_local_time",)) if times == 1 else (None, ())
        if early.utcoffset() != late.utcoffset():  # ambiguous: the hour that comes twice
            if times > 2:
                return None, ()
            return (early if times == 1 else late).astimezone(UTC), ()
        if times > 1:
            return None, ()
        return instant, ()


def nonnegative_number(value: Any, strings: bool = False) -> float | None:
    """A finite, non-negative number up to LARGEST (with `strings`, also one spelled as text),
    else None: the caller says why."""
    if isinstance(value, bool):
        return None
    if strings and isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int beyond a double
        return None
    if not math.isfinite(value) or not 0 <= value <= LARGEST:
        return None
    return value
