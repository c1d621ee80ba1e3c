"""A stand-in for the two Kubernetes API calls the Secret token store makes (GET and a merge
PATCH of one Secret), with the API server's optimistic-concurrency rule: a patch carrying a
stale metadata.resourceVersion is refused with 409 Conflict. Served over real HTTP so the
official kubernetes client is exercised unchanged; not a general Kubernetes fake."""

from __future__ import annotations

import threading

from flask import Flask, jsonify, request
from werkzeug.serving import make_server


class FakeSecretsApi:
    def __init__(self, namespace: str, name: str) -> None:
        self.namespace, self.name = namespace, name
        self.version = 1
        self.data: dict[str, str] = {}
        self.annotations: dict[str, str] = {}
        self.conflicts = 0
        # An API server that fails writes of the data (not of annotations) this many times.
        self.fail_data_writes = 0
        self._lock = threading.Lock()
        self.app = Flask(__name__)
        path = "/api/v1/namespaces/<ns>/secrets/<name>"
        self.app.add_url_rule(path, "get", self._get, methods=["GET"])
        self.app.add_url_rule(path, "patch", self._patch, methods=["PATCH"])

    def _secret(self) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": str(self.version),
                "annotations": self.annotations,
            },
            "data": self.data,
            "type": "Opaque",
        }

    def _missing(self, ns: str, name: str):
        if (ns, name) != (self.namespace, self.name):
            return jsonify(
                {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
            ), 404
        return None

    def _get(self, ns: str, name: str):
        with self._lock:
            return self._missing(ns, name) or jsonify(self._secret())

    def _patch(self, ns: str, name: str):
        assert request.content_type.startswith(
            ("application/merge-patch+json", "application/strategic-merge-patch+json")
        ), request.content_type
        body = request.get_json(force=True)
        with self._lock:
            if missing := self._missing(ns, name):
                return missing
            if body.get("data") and self.fail_data_writes > 0:
                self.fail_data_writes -= 1
                return jsonify(
                    {"kind": "Status", "status": "Failure", "reason": "InternalError", "code": 500}
                ), 500
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != str(self.version):
                self.conflicts += 1
                return jsonify(
                    {"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409}
                ), 409
            for key, value in ((body.get("metadata") or {}).get("annotations") or {}).items():
                if value is None:
                    self.annotations.pop(key, None)
                else:
                    self.annotations[key] = value
            for key, value in (body.get("data") or {}).items():
                if value is None:
                    self.data.pop(key, None)
                else:
                    self.data[key] = value
            self.version += 1
            return jsonify(self._secret())

    def __enter__(self) -> FakeSecretsApi:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def core_v1(url: str):
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    return client.CoreV1Api(client.ApiClient(configuration))
