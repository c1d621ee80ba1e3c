"""The lifecycle every plain-HTTP simulator shares: serve `self.app` on a thread of its own,
on a loopback port, until stopped (the Envoy simulator adds TLS and outages on its own)."""

from __future__ import annotations

import threading
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # test output stays readable; the simulators' own records are what tests read


class WsgiSimulator:
    """Mixin: `start()` / `stop()` / context manager for a simulator with a WSGI `app`."""

    thread_name = "simulator"
    app: Any
    base_url: str = ""
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = make_server(
            host, port, self.app, threaded=True, request_handler=QuietHandler
        )
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.base_url = f"http://{shown}:{self._server.server_port}"
        # A short poll interval keeps stop() fast; the default 0.5 s dominates test run time.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=self.thread_name,
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
