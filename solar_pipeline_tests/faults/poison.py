"""Answers a broken device or proxy can send and Python's json reads without complaint.

`json.loads` accepts NaN, Infinity and -Infinity (not JSON), turns 1e400 into inf and
10**400 into a Python int no double or DuckDB column holds, and raises RecursionError (not
ValueError) on nesting deeper than the interpreter's recursion limit. These strategies put such
values, and values of the wrong type, anywhere in a well-formed answer, written as the raw
text a device would send.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

DEPTH = 100_000
DEEP_ARRAY = "[" * DEPTH + "]" * DEPTH
DEEP_OBJECT = '{"a":' * DEPTH + "0" + "}" * DEPTH


def json_refuses(key: str) -> list[str | bytes]:
    """Answers whose `key` holds what json.loads refuses with a plain ValueError (which has no
    `.msg`), not a JSONDecodeError: an integer beyond Python's 4300-digit limit, and bytes in no
    UTF encoding."""
    huge = f'{{"{key}": {{"value": {"9" * 5000}}}}}'
    return [huge, b'{"' + key.encode() + b'": "\xff\xfe\xfd"}']


class Raw:
    """A JSON token written verbatim (json.dumps cannot write 1e400 or 100,000 levels)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:20]!r}{'...' if len(self.text) > 20 else ''})"


# Numbers that are not numbers, or too big for a double, a BIGINT or an INTEGER.
BAD_NUMBERS: list[Any] = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    10**400,
    -(10**400),
    2**63,
    -(2**63) - 1,
    2**31,
    1e308,
    -1.5,
]
# What a value of the wrong type looks like, and times at the ends of what a datetime holds.
WRONG_TYPES: list[Any] = [
    "",
    "text",
    "12",
    "1e400",
    "NaN",
    [],
    [1, 2],
    {},
    {"x": 1},
    True,
    False,
    None,
]
EDGE_TIMES: list[Any] = [
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-12:00",
    "01/01/0001 00:00:00",
    "12/31/9999 23:59:59",
    "01/01/0001",
    "12/31/9999",
    -62135596801,
    253402300800,
    -(2**62),
    2**62,
]
DEEP: list[Any] = [Raw(DEEP_ARRAY), Raw(DEEP_OBJECT)]
POISON: list[Any] = BAD_NUMBERS + WRONG_TYPES + EDGE_TIMES + DEEP


def dumps(value: Any) -> str:
    """JSON text of `value`, with each Raw written as its text."""
    tokens: list[str] = []

    def default(obj: Any) -> str:
        if isinstance(obj, Raw):
            tokens.append(obj.text)
            return f"@@raw{len(tokens) - 1}@@"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=default)
    return re.sub(r'"@@raw(\d+)@@"', lambda m: tokens[int(m.group(1))], text)


def as_loaded(value: Any) -> Any:
    """What json.loads gives for a Raw that it can read (1e400 -> inf, NaN -> nan); deep
    nesting stays as deep as json.loads itself reaches before it gives up (~ 900 levels)."""
    if isinstance(value, Raw):
        if value.text.startswith(("[", "{")):
            nested: Any = 0
            for _ in range(900):
                nested = [nested]
            return nested
        return json.loads(value.text)
    if isinstance(value, dict):
        return {k: as_loaded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_loaded(v) for v in value]
    return value


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def poisoned(draw: st.DrawFn, sample: Any, poison: list[Any] = POISON) -> Any:
    """`sample` with one to three of its values (or the whole of it) replaced by poison."""
    value = sample
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(value))
        # Leaves and near-leaves matter most: the root is one path among many.
        path = draw(st.sampled_from(paths))
        value = _replace(value, path, draw(st.sampled_from(poison)))
    return value


def finite_everywhere(value: Any, seen: int = 0) -> bool:
    """No NaN or infinity anywhere in a parser's result (dataclasses, dicts, lists)."""
    if seen > 50:
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_everywhere(v, seen + 1) for v in value.values())
    if isinstance(value, list | tuple | set):
        return all(finite_everywhere(v, seen + 1) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return all(
            finite_everywhere(getattr(value, f), seen + 1) for f in value.__dataclass_fields__
        )
    return True
