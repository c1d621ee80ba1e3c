"""The gateway's stored owner token (envoy_token.json) when it is damaged, a directory, open to
other users or a symbolic link: the run names the file and the fix, never its contents, and
renews through a link without replacing it."""

from __future__ import annotations

import json
import logging
import stat
import time

import pytest

from solar_pipeline_tests.envoy.conftest import make_envoy, run_envoy
from solar_pipeline_tests.helpers import failure_message

LEAK = "LEAKED-GATEWAY-TOKEN"


@pytest.fixture
def enlighten(live_envoy, monkeypatch):
    """Owner tokens fetched from (the simulated) Enlighten, as with a real account."""
    monkeypatch.delenv("ENVOY_TOKEN")
    monkeypatch.setenv("ENLIGHTEN_USERNAME", live_envoy.username)
    monkeypatch.setenv("ENLIGHTEN_PASSWORD", live_envoy.password)
    return live_envoy


def test_directory_in_place_of_the_token_file_names_it_and_the_fix(enlighten, warehouse, tmp_path):
    path = tmp_path / "envoy_token.json"
    (path / "x").mkdir(parents=True)
    result = run_envoy(make_envoy(enlighten, tmp_path), warehouse, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert f"{path} is a directory" in message and f"rmdir {path}" in message
    assert "the next run fetches a new token from Enlighten" in message


def test_damaged_token_file_is_replaced_by_a_fetched_token_and_said(
    enlighten, warehouse, tmp_path, caplog
):
    path = tmp_path / "envoy_token.json"
    path.write_text('{"token": "' + LEAK)
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert run_envoy(make_envoy(enlighten, tmp_path), warehouse).success
    said = [r.getMessage() for r in caplog.records if str(path) in r.getMessage()]
    assert len(said) == 1 and "damaged" in said[0] and "fetching a new token" in said[0]
    assert all(LEAK not in r.getMessage() for r in caplog.records)
    assert json.loads(path.read_text())["origin"] == "enlighten"


def test_damaged_token_file_without_a_way_to_fetch_names_the_file(
    live_envoy, warehouse, tmp_path, monkeypatch
):
    monkeypatch.delenv("ENVOY_TOKEN")
    path = tmp_path / "envoy_token.json"
    path.write_text(json.dumps([LEAK]))
    result = run_envoy(make_envoy(live_envoy, tmp_path), warehouse, raise_on_error=False)
    message = failure_message(result)
    assert f"{path} is damaged" in message and LEAK not in message
    assert f"mv {path} {path}.damaged" in message and "set ENVOY_TOKEN" in message


def test_renewal_through_a_symlinked_token_file_keeps_the_link(
    enlighten, warehouse, tmp_path, caplog
):
    real = tmp_path / "volume" / "envoy_token.json"
    real.parent.mkdir()
    expiring = enlighten.mint_token(lifetime_s=86400)  # inside the renewal margin
    stored = {"token": expiring, "expires_at": int(time.time()) + 86400}
    real.write_text(json.dumps({**stored, "origin": "enlighten", "obtained_at": 0}))
    real.chmod(0o644)
    state = tmp_path / "state"
    state.mkdir()
    (state / "envoy_token.json").symlink_to(real)

    with caplog.at_level(logging.WARNING):
        assert run_envoy(make_envoy(enlighten, state), warehouse).success
    link = state / "envoy_token.json"
    assert any(f"chmod 600 {link}" in r.getMessage() for r in caplog.records)
    assert (state / "envoy_token.json").is_symlink()
    assert json.loads(real.read_text())["token"] != expiring
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
