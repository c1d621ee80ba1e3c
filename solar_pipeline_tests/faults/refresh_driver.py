"""Test-only driver: the real token refresh (TokenManager + OAuthClient + FileTokenStore) in a
process of its own, so a test can run eight of them at once or kill one with SIGKILL at a
chosen point of the refresh.

The kill points hang off the standard library and requests (a socket's connect/sendall, a
response hook, os.fsync, os.replace), never off solar_pipeline's code, so the code under test
is exactly the code a run executes.

    python -m solar_pipeline_tests.faults.refresh_driver BASE_URL STORE_PATH POINT

POINT is one of KILL_POINTS, or "external" for a kill sent by the parent at a random moment.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import requests

from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenManager
from solar_pipeline.sources.http import build_session

# Where the refresh can die, in the order it passes them, and what the next refresh may do:
# "ok" (the refresh token was not spent, or the new pair was already written somewhere the
# store reads), "reauth" (the simulator spent the old token and the new pair died with the
# process), "either" (the request left, and the simulator may or may not have read it before
# the next refresh races it).
KILL_POINTS = {
    "after_reserve": "ok",  # lock held, temporary file made and allocated, nothing sent
    "before_connect": "ok",  # nothing sent
    "after_send": "either",  # request bytes handed to the kernel, no answer yet
    "after_response": "reauth",  # answer received, nothing written
    "during_temp_write": "ok",  # pair written into the temporary file, before its fsync
    "before_replace": "ok",  # temporary file complete, not yet renamed over the store
    "after_replace": "ok",  # store replaced, before the directory fsync
}
# Where the new pair is after the kill: the store file, a temporary file beside it (which the
# store reads as a kept pair), or nowhere.
NEW_PAIR_IN = {
    "during_temp_write": "temp",
    "before_replace": "temp",
    "after_replace": "store",
}


def manager(base_url: str, store_path: str | Path) -> TokenManager:
    oauth = OAuthClient(base_url, "sim-client-id", "sim-client-secret", build_session(0.01))
    return TokenManager(FileTokenStore(store_path), oauth)


def _die(*_: Any, **__: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(point: str, session: requests.Session) -> None:
    if point == "before_connect":
        socket.socket.connect = _die  # type: ignore[method-assign]
    elif point == "after_send":
        sendall = socket.socket.sendall

        def sendall_then_die(self: socket.socket, data: bytes, *args: Any) -> None:
            sendall(self, data, *args)
            if b"refresh_token=" in bytes(data):
                _die()

        socket.socket.sendall = sendall_then_die  # type: ignore[method-assign,assignment]
    elif point == "after_response":
        session.hooks["response"].append(_die)
    elif point in ("after_reserve", "during_temp_write"):
        # The first fsync makes the reservation durable (before the request), the second the
        # written pair.
        fsync, calls = os.fsync, []

        def fsync_or_die(fd: int) -> None:
            calls.append(fd)
            if len(calls) == (1 if point == "after_reserve" else 2):
                _die()
            fsync(fd)

        os.fsync = fsync_or_die  # type: ignore[assignment]  # a test double for one run
    elif point in ("before_replace", "after_replace"):
        replace = os.replace

        def replace_and_die(src: Any, dst: Any, **kw: Any) -> None:
            if point == "after_replace":
                replace(src, dst, **kw)
            _die()

        os.replace = replace_and_die
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def main(base_url: str, store_path: str, point: str) -> None:
    """Refresh once. With a kill point, die there; with "external", wait until the parent says
    go (imports done, so its timed kill lands inside the refresh) and let it do the killing."""
    tokens = manager(base_url, store_path)
    if point == "external":
        print("ready", flush=True)
        sys.stdin.readline()
    else:
        _arm(point, tokens.oauth.session)  # type: ignore[attr-defined]
    pair = tokens.store.read()
    assert pair is not None
    tokens.refresh_after_401(pair.access_token)  # forces a refresh: the stored token "failed"
    print("refreshed", flush=True)  # the end of the window the parent aims its kills at
    # Not killed: the parent treats this status as "the kill point was never reached".
    sys.exit(3)


def race(
    base_url: str, store_path: str, system_id: int, rounds: int, barrier: Any, out: Any
) -> None:
    """One of the racing processes: each round, a data call with the token it holds is refused
    (the parent expired it), it asks for a refresh at the same moment as the others, and checks
    the token it got works."""
    tokens = manager(base_url, store_path)
    session = requests.Session()
    summary = f"{base_url}/api/v4/systems/{system_id}/summary"

    def call(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}", "key": "sim-api-key"}
        return session.get(summary, headers=headers, timeout=30).status_code

    try:
        barrier.wait()
        token = tokens.access_token()
        barrier.wait()  # everyone holds the same first access token
        for _ in range(rounds):
            barrier.wait()  # the parent has expired every access token
            refused = call(token)
            token = tokens.refresh_after_401(token)
            out.put(("round", refused, call(token)))
            barrier.wait()  # the parent checks the round
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(("error", type(exc).__name__, str(exc)[:300]))
        barrier.abort()


if __name__ == "__main__":
    main(*sys.argv[1:4])
