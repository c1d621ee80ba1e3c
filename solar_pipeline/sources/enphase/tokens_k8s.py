"""Token store in a Kubernetes Secret, for runs in pods that share no filesystem.

Needs only `get` and `patch` on that one Secret (create it beforehand, empty or holding the
seed). Refreshes are serialised by a lease kept in an annotation of the Secret itself; taking
and releasing the lease, and writing the tokens, are patches that carry the resourceVersion
last read, so the API server refuses (409) any write based on a stale read: optimistic
concurrency instead of a lock file.

A refresh is sent only after a patch of the Secret succeeded just before it (`reserve()`
renews the lease), so an API server that refuses writes costs nothing. If the write of the new
pair still fails after the answer, it is retried for a while (within the lease); if it keeps
failing, the pair is kept in a local file (token_file.rescue_file) that `read()` of this store
prefers while it is newer, so the next run in the same container or host uses it and the next
successful write moves it into the Secret.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from solar_pipeline.sources.enphase.errors import STORE_REMEDY
from solar_pipeline.sources.enphase.token_file import read_rescued, rescue_file
from solar_pipeline.sources.enphase.token_pair import TokenPair, TokenStoreError
from solar_pipeline.sources.files import write_private_file

DATA_KEY = "tokens.json"
LEASE_ANNOTATION = "solar-pipeline/refresh-lease"
# Pauses between attempts to write a new pair (about half a minute in all, well within the lease).
WRITE_RETRY_S = (1.0, 2.0, 4.0, 8.0, 16.0)


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
        remedy: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self._api = api
        self.lease_s = lease_s
        self.wait_s = wait_s
        self.clock = clock
        self.sleep = sleep
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.remedy = remedy or STORE_REMEDY

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
        stored = self._read_secret()
        rescued = read_rescued(self._rescue_file())
        if rescued is not None and (stored is None or rescued.obtained_at >= stored.obtained_at):
            return rescued
        return stored

    def _read_secret(self) -> TokenPair | None:
        data = self._get().data or {}
        if not data.get(DATA_KEY):
            return None
        try:
            text = base64.b64decode(data[DATA_KEY], validate=True).decode()
        except ValueError:  # binascii.Error, UnicodeDecodeError
            raise self._damaged("not base64-encoded text") from None
        try:
            return TokenPair.from_json(text)
        except ValueError as exc:
            raise self._damaged(str(exc)) from None

    def _damaged(self, reason: str) -> TokenStoreError:
        patch = f'[{{"op":"remove","path":"/data/{DATA_KEY}"}}]'
        return TokenStoreError(
            f"The key {DATA_KEY} of the Kubernetes Secret {self.namespace}/{self.name} is "
            f"damaged ({reason}; its contents are not shown, they may hold secrets). Remove "
            f"the key (`kubectl -n {self.namespace} patch secret {self.name} --type=json "
            f"-p '{patch}'`), then {self.remedy}"
        )

    def write(self, pair: TokenPair) -> None:
        encoded = base64.b64encode(pair.to_json().encode()).decode()
        while True:
            secret = self._get()
            if self._patch(secret.metadata.resource_version, {"data": {DATA_KEY: encoded}}):
                break
        rescued = read_rescued(self._rescue_file())
        if rescued is not None and rescued.obtained_at <= pair.obtained_at:
            self._rescue_file().unlink(missing_ok=True)

    def _rescue_file(self) -> Path:
        return rescue_file(f"k8s-{self.namespace}-{self.name}", self.describe())

    @contextlib.contextmanager
    def reserve(self) -> Iterator[_Reservation]:
        """Renew the lease (a patch, as the pair's write will be) before a pair is requested:
        an API server that refuses writes now costs no refresh token."""
        try:
            renewed = any(self._take_lease() for _ in range(3))  # a 409 just means: read again
        except Exception as exc:
            raise TokenStoreError(
                f"The token store {self.describe()} cannot be written ({_reason(exc)}), so no "
                "new token pair was requested: nothing was sent, and the stored refresh token "
                "is unused and still valid. Check the API server and that the service account "
                "may patch the Secret, then run again."
            ) from None
        if not renewed:
            raise TokenStoreError(
                f"{self.describe()}: the refresh lease could not be renewed (another process "
                "holds it or keeps writing the Secret), so no new token pair was requested."
            )
        yield _Reservation(self)

    def _take_lease(self) -> bool:
        """One attempt to take (or renew) the lease; False when someone else holds it or
        wrote in between."""
        secret = self._get()
        if self._lease_holder(secret) not in (None, self.holder):
            return False
        lease = f"{self.holder}@{self.clock() + self.lease_s:.0f}"
        body = {"metadata": {"annotations": {LEASE_ANNOTATION: lease}}}
        return self._patch(secret.metadata.resource_version, body)

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
                if self._take_lease():
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


def _reason(exc: BaseException) -> str:
    """A short reason without the API server's body (it may echo what was sent)."""
    status = getattr(exc, "status", None)
    return f"HTTP {status}" if status else type(exc).__name__


class _Reservation:
    def __init__(self, store: K8sSecretTokenStore) -> None:
        self.store = store

    def commit(self, pair: TokenPair) -> None:
        """Write the pair into the Secret, retrying a failing API server for a while; then
        keep it in the local rescue file and say so."""
        store = self.store
        error: BaseException | None = None
        for pause in (*WRITE_RETRY_S, None):
            try:
                store.write(pair)
                return
            except Exception as exc:  # the API server's errors, the connection's
                error = exc
            if pause is not None:
                store.sleep(pause)
        assert error is not None  # every attempt failed, or it returned
        kept = store._rescue_file()
        try:
            write_private_file(kept, pair.to_json())
        except OSError:
            raise TokenStoreError(
                f"A new token pair was received but could not be written to {store.describe()} "
                f"({_reason(error)}) nor kept in {kept}, and the previous refresh token is "
                f"spent: {store.remedy}"
            ) from None
        raise TokenStoreError(
            f"A new token pair was received but could not be written to {store.describe()} "
            f"({_reason(error)}). It is kept in {kept} (mode 0600) on this machine: the next "
            "run here uses it from there and moves it into the Secret once the API server "
            "takes writes again. Do not delete it: the previous refresh token is spent."
        )
