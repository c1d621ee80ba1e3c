"""Token store in a Kubernetes Secret, for runs in pods that share no filesystem.

Needs only `get` and `patch` on that one Secret (create it beforehand, empty or holding the
seed). Refreshes are serialised by a lease kept in an annotation of the Secret itself; taking
and releasing the lease, and writing the tokens, are patches that carry the resourceVersion
last read, so the API server refuses (409) any write based on a stale read: optimistic
concurrency instead of a lock file.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from solar_pipeline.sources.enphase.tokens import TokenPair

DATA_KEY = "tokens.json"
LEASE_ANNOTATION = "solar-pipeline/refresh-lease"


class K8sSecretTokenStore:
    def __init__(
        self,
        namespace: str,
        name: str,
        api: Any | None = None,
        lease_s: float = 120.0,
        wait_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self._api = api
        self.lease_s = lease_s
        self.wait_s = wait_s
        self.clock = clock
        self.sleep = sleep
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def describe(self) -> str:
        return f"k8s:{self.namespace}/{self.name}"

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api = client.CoreV1Api()
        return self._api

    def _get(self) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.read_namespaced_secret(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise RuntimeError(
                    f"Kubernetes Secret {self.namespace}/{self.name} (ENPHASE_TOKEN_STORE) does "
                    f"not exist: create it, e.g. `kubectl -n {self.namespace} create secret "
                    f"generic {self.name}`"
                ) from None
            raise

    def _patch(self, resource_version: str, body: dict[str, Any]) -> bool:
        """Apply `body` if nobody wrote since we read `resource_version`; False on conflict."""
        from kubernetes.client.exceptions import ApiException

        body = {
            **body,
            "metadata": {**body.get("metadata", {}), "resourceVersion": resource_version},
        }
        try:
            self.api.patch_namespaced_secret(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def read(self) -> TokenPair | None:
        data = self._get().data or {}
        if not data.get(DATA_KEY):
            return None
        return TokenPair.from_json(base64.b64decode(data[DATA_KEY]).decode())

    def write(self, pair: TokenPair) -> None:
        encoded = base64.b64encode(pair.to_json().encode()).decode()
        while True:
            secret = self._get()
            if self._patch(secret.metadata.resource_version, {"data": {DATA_KEY: encoded}}):
                return

    def _lease_holder(self, secret: Any) -> str | None:
        value = (secret.metadata.annotations or {}).get(LEASE_ANNOTATION)
        if not value:
            return None
        holder, _, until = value.rpartition("@")
        try:
            return holder if float(until) > self.clock() else None
        except ValueError:
            return None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        deadline = self.clock() + self.wait_s
        while True:
            secret = self._get()
            holder = self._lease_holder(secret)
            if holder in (None, self.holder):
                lease = f"{self.holder}@{self.clock() + self.lease_s:.0f}"
                body = {"metadata": {"annotations": {LEASE_ANNOTATION: lease}}}
                if self._patch(secret.metadata.resource_version, body):
                    break
                continue  # someone else wrote in between: read again
            if self.clock() > deadline:
                raise TimeoutError(
                    f"{self.describe()}: refresh lease held by {holder} for over {self.wait_s} s"
                )
            self.sleep(0.5)
        try:
            yield
        finally:
            while True:
                secret = self._get()
                if self._lease_holder(secret) != self.holder:
                    break
                body = {"metadata": {"annotations": {LEASE_ANNOTATION: None}}}
                if self._patch(secret.metadata.resource_version, body):
                    break
