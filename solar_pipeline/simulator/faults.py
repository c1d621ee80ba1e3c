"""Faults armed by a test, each answering the next N matching requests of a simulator.

Every simulator (Enphase cloud, Envoy gateway and its Enlighten/Entrez hosts, SolarEdge, SMA,
GoodWe, Fronius) can be armed two ways:

- `fail_next(...)`, each simulator's own: an error status or a broken answer of its API.
- `misbehave_next(kind, count=1, path_contains=None, status=None)`, the same everywhere
  (`ArmsMisbehaviour`): an answer that attacks the client rather than the parser. `kind` is one
  of KINDS:

  - "redirect": a redirect (302, or `status` when it is a 3xx) to the same path and query on
    `elsewhere()`, a second loopback listener standing for another host. It keeps every
    request it receives, so a test can show that no credential arrived there.
  - "huge_body": a valid JSON array of HUGE_BODY_BYTES (50 MB), streamed.
  - "gzip_bomb": `Content-Encoding: gzip`, about 1 MB on the wire that inflates to
    GZIP_BOMB_BYTES (1 GiB) of a valid JSON array.
  - "deep_json": DEEP_JSON_DEPTH nested arrays (valid JSON that Python's json cannot read).
  - "nan", "infinity", "huge_number": the simulator's real answer with every JSON number in it
    replaced by `NaN`, `Infinity` or `1e400` (which Python's json reads as NaN, inf, inf).

  `status` sets the answer's status (default 200; 302 for a redirect); `path_contains` matches
  the path plus query string, else the next request of any path matches, token and login
  endpoints included. `misbehaviours_served` counts what was served, by kind.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, Protocol, TypeVar

from flask import Flask, g, request
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from solar_pipeline.simulator.server import WsgiSimulator


class Fault(Protocol):
    remaining: int


F = TypeVar("F", bound=Fault)


class FaultQueue(Generic[F]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[F] = []

    def add(self, fault: F) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Disarm every fault not yet spent."""
        with self._lock:
            self._faults = []

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """The first armed fault that matches this request, spending one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and matches(fault):
                    fault.remaining -= 1
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    return fault
        return None


# ---- misbehaviour: answers that attack the client ------------------------------------------

HUGE_BODY_BYTES = 50_000_000
GZIP_BOMB_BYTES = 1 << 30
DEEP_JSON_DEPTH = 100_000
NUMBER_TOKENS = {"nan": "NaN", "infinity": "Infinity", "huge_number": "1e400"}
KINDS = ("redirect", "huge_body", "gzip_bomb", "deep_json", *NUMBER_TOKENS)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_CHUNK_PAIRS = 32_768  # "0," pairs per streamed chunk of the huge body (64 KiB)


@dataclass
class Misbehaviour:
    remaining: int
    kind: str
    status: int | None
    path_contains: str | None

    def matches(self, where: str) -> bool:
        return not self.path_contains or self.path_contains in where


@dataclass(frozen=True)
class Caught:
    """One request that reached `elsewhere()`, as it arrived."""

    method: str
    target: str  # path and query string
    headers: dict[str, str]
    body: bytes

    def carries(self, secret: str) -> bool:
        """Whether `secret` arrived anywhere in this request (URL, a header, the body)."""
        return (
            secret in self.target
            or any(secret in f"{k}: {v}" for k, v in self.headers.items())
            or secret.encode() in self.body
        )


class Elsewhere(WsgiSimulator):
    """Another host, as far as a client can tell (another loopback port: another origin). It
    answers every request with a plausible JSON 200 and keeps what it received."""

    thread_name = "elsewhere"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caught: list[Caught] = []

    @property
    def caught(self) -> list[Caught]:
        with self._lock:
            return list(self._caught)

    def app(self, environ: dict[str, Any], start_response: Callable) -> Any:
        req = Request(environ)
        target = req.full_path if req.query_string else req.path
        with self._lock:
            self._caught.append(
                Caught(req.method, target, dict(req.headers.items()), req.get_data())
            )
        return Response('{"caught": true}', 200, content_type="application/json")(
            environ, start_response
        )


_elsewhere: Elsewhere | None = None
_elsewhere_lock = threading.Lock()


def elsewhere() -> Elsewhere:
    """The process's one Elsewhere listener, started on first use (on 127.0.0.1)."""
    global _elsewhere
    with _elsewhere_lock:
        if _elsewhere is None:
            listener = Elsewhere()
            listener.start("127.0.0.1", 0)
            _elsewhere = listener
        return _elsewhere


def _huge_body() -> Response:
    pairs, pad = divmod(HUGE_BODY_BYTES - 3, 2)  # `[` "0," * pairs `0` pad `]`
    chunk = b"0," * _CHUNK_PAIRS

    def stream() -> Iterator[bytes]:
        yield b"["
        full, rest = divmod(pairs, _CHUNK_PAIRS)
        for _ in range(full):
            yield chunk
        yield b"0," * rest + b"0" + b" " * pad + b"]"

    response = Response(stream(), content_type="application/json")
    response.headers["Content-Length"] = str(HUGE_BODY_BYTES)
    return response


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """Gzip members back to back (a valid gzip stream): `[`, 1 MiB blocks of `0,`, `0]`."""
    block = gzip.compress(b"0," * (1 << 19), compresslevel=9, mtime=0)
    return (
        gzip.compress(b"[", mtime=0)
        + block * (GZIP_BOMB_BYTES >> 20)
        + gzip.compress(b"0]", mtime=0)
    )


def misbehaving_answer(kind: str, status: int | None, target: str) -> Response:
    """The answer of a misbehaviour served instead of the simulator's (not the number kinds)."""
    if kind == "redirect":
        code = status if status in REDIRECT_STATUSES else 302
        # werkzeug's redirect page names the target in its body, as real servers' pages do.
        return redirect(elsewhere().base_url + target, code)
    if kind == "huge_body":
        response = _huge_body()
    elif kind == "gzip_bomb":
        response = Response(gzip_bomb(), content_type="application/json")
        response.headers["Content-Encoding"] = "gzip"
    elif kind == "deep_json":
        depth = DEEP_JSON_DEPTH
        response = Response("[" * depth + "]" * depth, content_type="application/json")
    else:
        raise ValueError(f"{kind!r} is not a misbehaviour served instead of an answer")
    response.status_code = status or 200
    return response


def spoil_numbers(text: str, token: str) -> str | None:
    """The JSON `text` with every number written as `token`; None when it is not JSON."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return _dump(data, token)


def _dump(value: Any, token: str) -> str:
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))}:{_dump(v, token)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v, token) for v in value) + "]"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return token
    return json.dumps(value)


class ArmsMisbehaviour:
    """Mixin for a simulator: `misbehave_next` arms, `install_misbehaviour(app)` serves (call it
    before the simulator registers its own gate, so these answers come first)."""

    def __init__(self) -> None:
        self._misbehaviours: FaultQueue[Misbehaviour] = FaultQueue()
        self.misbehaviours_served: Counter[str] = Counter()

    def misbehave_next(
        self,
        kind: str,
        count: int = 1,
        path_contains: str | None = None,
        status: int | None = None,
    ) -> None:
        """Answer the next `count` matching requests with the misbehaviour `kind` (KINDS)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        self._misbehaviours.add(Misbehaviour(count, kind, status, path_contains))

    def clear_faults(self) -> None:
        """Disarm every fault armed and not yet served (a run that stopped early leaves the
        rest armed)."""
        self._misbehaviours.clear()

    def install_misbehaviour(self, app: Flask) -> None:
        app.before_request(self._misbehave)
        app.after_request(self._spoil_answer)

    def _misbehave(self) -> Response | None:
        target = request.full_path if request.query_string else request.path
        armed = self._misbehaviours.take(lambda m: m.matches(target))
        if armed is None:
            return None
        self.misbehaviours_served[armed.kind] += 1
        if armed.kind in NUMBER_TOKENS:
            # The simulator answers as usual; _spoil_answer rewrites the numbers.
            g.spoil_numbers = (NUMBER_TOKENS[armed.kind], armed.status)
            return None
        return misbehaving_answer(armed.kind, armed.status, target)

    @staticmethod
    def _spoil_answer(response: Response) -> Response:
        spoil = g.pop("spoil_numbers", None)
        if spoil is None or response.is_streamed:
            return response
        token, status = spoil
        spoiled = spoil_numbers(response.get_data(as_text=True), token)
        if spoiled is not None:
            response.set_data(spoiled)
        if status is not None:
            response.status_code = status
        return response


# ---- plain faults: a status and a body of the simulator's API ------------------------------


@dataclass
class HttpFault:
    """The next `remaining` requests whose path contains `path_contains` (any, if None)
    answer `status` with `body`."""

    remaining: int
    status: int
    body: str | None
    content_type: str
    path_contains: str | None = None

    def matches(self, path: str) -> bool:
        return not self.path_contains or self.path_contains in path


class ArmsHttpFaults(ArmsMisbehaviour):
    """Mixin for a simulator: `fail_next` arms faults; `_fault_answer(path)` serves the next
    one that matches. Each simulator sets its defaults; a cut-off answer of its own API makes
    the default body (a malformed answer the client must keep and report). Misbehaviour
    (`misbehave_next`) comes with it."""

    fault_status: int = 200
    fault_body: str | None = None
    fault_content_type: str = "application/json"

    def __init__(self) -> None:
        super().__init__()
        self._faults: FaultQueue[HttpFault] = FaultQueue()

    def fail_next(
        self,
        count: int = 1,
        status: int | None = None,
        body: str | None = None,
        content_type: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` and `body`."""
        self._faults.add(
            HttpFault(
                count,
                self.fault_status if status is None else status,
                self.fault_body if body is None else body,
                content_type or self.fault_content_type,
                path_contains,
            )
        )

    def clear_faults(self) -> None:
        super().clear_faults()
        self._faults.clear()

    def _fault_answer(self, path: str) -> Response | None:
        fault = self._faults.take(lambda f: f.matches(path))
        if fault is None:
            return None
        return Response(fault.body or "", fault.status, content_type=fault.content_type)
