"""Refresh-token rotation against the strict simulator: persisted, serialised, recoverable."""

import json
import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest
import requests

from solar_pipeline.sources.enphase.errors import ReauthorizationRequired
from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenManager, TokenPair
from solar_pipeline.sources.http import build_session
from solar_pipeline_tests.conftest import SYSTEM, make_enphase
from solar_pipeline_tests.helpers import ALL_CLOUD, failure_message, run_range

TODAY_SNAPSHOTS = {"ops": {"raw__enphase_responses": {"config": {"snapshots": "always"}}}}
DAY = "2025-06-10"


def _manager(base_url: str, store_path: Path) -> TokenManager:
    oauth = OAuthClient(base_url, "sim-client-id", "sim-client-secret", build_session(0.01))
    return TokenManager(FileTokenStore(store_path), oauth)


def _data_call(sim, access_token: str) -> int:
    return requests.get(
        f"{sim.base_url}/api/v4/systems/{SYSTEM.system_id}/summary",
        headers={"Authorization": f"Bearer {access_token}", "key": sim.api_key},
        timeout=5,
    ).status_code


def test_rotated_pair_is_persisted_and_used_by_the_next_run(sim, enphase, warehouse, tmp_path):
    store = FileTokenStore(tmp_path / "enphase_tokens.json")
    assert run_range(enphase, warehouse, DAY, DAY).success
    first = store.read()
    assert first is not None and first.origin == "refresh" and first.access_token
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600

    # The next run finds its access token rejected: it refreshes once with the stored refresh
    # token (the seed in ENPHASE_REFRESH_TOKEN is spent and must be ignored) and succeeds.
    sim.expire_access_tokens()
    refreshes = sim.stats.token_refreshes
    assert run_range(make_enphase(sim, tmp_path), warehouse, DAY, DAY).success
    second = store.read()
    assert sim.stats.token_refreshes == refreshes + 1
    assert second.refresh_token != first.refresh_token
    assert sim.stats.rejected_refreshes == 0
    # Strict rotation: the previous refresh token is dead, the stored one is the live one.
    with pytest.raises(ReauthorizationRequired):
        _manager(sim.base_url, tmp_path / "other.json").oauth.refresh(first.refresh_token)
    assert _data_call(sim, _manager(sim.base_url, store.path).access_token()) == 200


def _refresh_in_child(base_url: str, store_path: str, barrier, out) -> None:
    manager = _manager(base_url, Path(store_path))
    barrier.wait()
    try:
        out.put(("ok", manager.access_token()))
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(("error", repr(exc)))


def test_two_processes_refreshing_at_once_end_with_one_refresh(sim, tmp_path):
    store_path = tmp_path / "enphase_tokens.json"
    assert _manager(sim.base_url, store_path).seed_if_empty(sim.mint_refresh_token())
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_refresh_in_child, args=(sim.base_url, str(store_path), barrier, out))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [r[0] for r in results] == ["ok", "ok"], results
    assert results[0][1] == results[1][1]
    assert sim.stats.token_refreshes == 1
    assert sim.stats.rejected_refreshes == 0
    stored = FileTokenStore(store_path).read()
    assert stored.access_token == results[0][1]
    assert _data_call(sim, stored.access_token) == 200


def test_revoked_refresh_token_asks_to_reauthorize(sim, enphase, warehouse, tmp_path):
    sim.revoke_refresh_tokens()
    result = run_range(enphase, warehouse, DAY, DAY, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "solar-pipeline enphase-auth" in message
    assert "invalid_grant" in message


def test_401_mid_run_refreshes_once_and_retries(sim, enphase, warehouse):
    assert run_range(enphase, warehouse, DAY, DAY).success
    refreshes = sim.stats.token_refreshes
    sim.expire_access_tokens()
    result = run_range(
        enphase, warehouse, DAY, DAY, selection=ALL_CLOUD, run_config=TODAY_SNAPSHOTS
    )
    assert result.success
    assert sim.stats.token_refreshes == refreshes + 1


def test_seed_is_ignored_once_the_store_holds_a_pair(sim, tmp_path):
    manager = _manager(sim.base_url, tmp_path / "t.json")
    assert manager.seed_if_empty("seed-one")
    assert not manager.seed_if_empty("seed-two")
    assert manager.store.read().refresh_token == "seed-one"


def test_proactive_refresh_when_access_token_is_old(sim, tmp_path):
    manager = _manager(sim.base_url, tmp_path / "t.json")
    manager.seed_if_empty(sim.mint_refresh_token())
    token = manager.access_token()
    pair = manager.store.read()
    # 13 hours old: past the 12-hour proactive refresh age though not expired.
    aged = TokenPair(**{**json.loads(pair.to_json()), "obtained_at": int(time.time()) - 13 * 3600})
    manager.store.write(aged)
    fresh = _manager(sim.base_url, tmp_path / "t.json")
    assert fresh.access_token() != token
    assert sim.stats.token_refreshes == 2


def test_token_pair_repr_hides_tokens():
    pair = TokenPair("access-secret", "refresh-secret", 1, 2, 0)
    assert "secret" not in repr(pair) and "secret" not in str(pair)
