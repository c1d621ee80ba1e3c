"""The Kubernetes Secret token store with the official client, against a fake of the two
Secret API calls it makes (see fake_k8s.py: GET and merge-PATCH with resourceVersion
preconditions). Whether a real API server behaves the same is not tested here."""

import threading

import pytest

from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import (
    TokenManager,
    TokenPair,
    TokenStoreError,
    token_store_from_uri,
)
from solar_pipeline.sources.enphase.tokens_k8s import LEASE_ANNOTATION, K8sSecretTokenStore
from solar_pipeline.sources.http import build_session
from solar_pipeline_tests.fake_k8s import FakeSecretsApi, core_v1


@pytest.fixture
def k8s():
    with FakeSecretsApi("solar", "enphase-tokens") as api:
        yield api


def _store(k8s: FakeSecretsApi) -> K8sSecretTokenStore:
    return K8sSecretTokenStore("solar", "enphase-tokens", api=core_v1(k8s.url))


def test_uri_selects_the_secret_store():
    store = token_store_from_uri("k8s:solar/enphase-tokens")
    assert isinstance(store, K8sSecretTokenStore)
    assert store.describe() == "k8s:solar/enphase-tokens"


def test_write_read_and_lease_release(k8s):
    store = _store(k8s)
    assert store.read() is None
    pair = TokenPair("a", "r", 10, 20, 5)
    with store.lock():
        assert LEASE_ANNOTATION in k8s.annotations
        store.write(pair)
    assert LEASE_ANNOTATION not in k8s.annotations
    assert store.read() == pair


def test_missing_secret_says_how_to_create_it(k8s):
    store = K8sSecretTokenStore("solar", "nope", api=core_v1(k8s.url))
    with pytest.raises(RuntimeError, match="kubectl -n solar create secret generic nope"):
        store.read()


def test_two_pods_refreshing_at_once_end_with_one_refresh(sim, k8s):
    _store(k8s).write(TokenPair.seed(sim.mint_refresh_token(), 0))
    barrier, results = threading.Barrier(4), []

    def pod() -> None:
        oauth = OAuthClient(sim.base_url, sim.client_id, sim.client_secret, build_session(0.01))
        manager = TokenManager(_store(k8s), oauth)
        barrier.wait()
        results.append(manager.access_token())

    threads = [threading.Thread(target=pod) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 4 and len(set(results)) == 1
    assert sim.stats.token_refreshes == 1 and sim.stats.rejected_refreshes == 0
    assert _store(k8s).read().access_token == results[0]
    assert LEASE_ANNOTATION not in k8s.annotations


def test_a_write_based_on_a_stale_read_is_refused(k8s):
    a, b = _store(k8s), _store(k8s)
    stale = a._get().metadata.resource_version
    b.write(TokenPair("b", "rb", 1, 2, 0))
    assert not a._patch(stale, {"data": {"tokens.json": ""}})
    assert k8s.conflicts == 1
    assert a.read().access_token == "b"


def _manager(sim, store: K8sSecretTokenStore) -> TokenManager:
    oauth = OAuthClient(sim.base_url, sim.client_id, sim.client_secret, build_session(0.01))
    return TokenManager(store, oauth)


def _patient_store(k8s: FakeSecretsApi) -> K8sSecretTokenStore:
    """The store as a pod builds it, without the real pauses between write attempts."""
    return K8sSecretTokenStore(
        "solar", "enphase-tokens", api=core_v1(k8s.url), sleep=lambda _: None
    )


def test_a_secret_that_refuses_the_new_pair_keeps_it_for_the_next_run(
    sim, k8s, tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    _store(k8s).write(TokenPair.seed(sim.mint_refresh_token(), 0))
    k8s.fail_data_writes = 1000  # the API server fails every write of the pair
    with pytest.raises(TokenStoreError) as caught:
        _manager(sim, _patient_store(k8s)).access_token()
    assert sim.stats.token_refreshes == 1  # the seed is spent
    (kept,) = (tmp_path / "state" / "solar-pipeline" / "rescued-tokens").iterdir()
    assert str(kept) in str(caught.value)
    assert LEASE_ANNOTATION not in k8s.annotations

    # The API server recovers: the next run here uses the kept pair, refreshes with it (the
    # strict simulator would refuse the spent seed) and stores the result in the Secret.
    k8s.fail_data_writes = 0
    manager = _manager(sim, _patient_store(k8s))
    token = manager.refresh_after_401(manager.current().access_token)
    assert sim.stats.rejected_refreshes == 0
    assert _store(k8s)._read_secret().access_token == token
    assert not kept.exists()


def test_a_brief_api_server_failure_after_the_refresh_is_retried(sim, k8s, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    _store(k8s).write(TokenPair.seed(sim.mint_refresh_token(), 0))
    k8s.fail_data_writes = 2
    token = _manager(sim, _patient_store(k8s)).access_token()
    assert _store(k8s).read().access_token == token
    assert not (tmp_path / "state").exists()


def test_a_damaged_secret_names_the_key_and_the_fix_without_its_contents(k8s):
    import base64

    secret_text = '{"access_token": "LEAKED-ACCESS", "refresh_token": 7}'
    k8s.data["tokens.json"] = base64.b64encode(secret_text.encode()).decode()
    with pytest.raises(TokenStoreError) as caught:
        _store(k8s).read()
    message = str(caught.value)
    assert "LEAKED" not in message
    assert "tokens.json of the Kubernetes Secret solar/enphase-tokens" in message
    assert "kubectl -n solar patch secret enphase-tokens" in message
    assert "solar-pipeline enphase-auth" in message
