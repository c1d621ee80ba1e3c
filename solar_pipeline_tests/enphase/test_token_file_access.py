"""Who can read the token file, and what a symbolic link there means: a file others can read is
warned about with the command that fixes it; a link is followed (the target is replaced
atomically in its own directory and the link stays), unless another user owns the link."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenManager, TokenStoreError
from solar_pipeline.sources.http import build_session


def _manager(sim, store_path: Path) -> TokenManager:
    oauth = OAuthClient(sim.base_url, sim.client_id, sim.client_secret, build_session(0.01))
    return TokenManager(FileTokenStore(store_path), oauth)


def _stored_pair(sim, store_path: Path) -> str:
    manager = _manager(sim, store_path)
    assert manager.seed_if_empty(sim.mint_refresh_token())
    return manager.access_token()


def test_token_file_others_can_read_is_warned_with_the_chmod(sim, tmp_path, monkeypatch, caplog):
    path = tmp_path / "enphase_tokens.json"
    _stored_pair(sim, path)
    path.chmod(0o644)

    # A run that reads it says so in its log (stderr: the compute log).
    with caplog.at_level(logging.WARNING):
        _manager(sim, path).access_token()
    assert any(f"chmod 600 {path}" in r.getMessage() for r in caplog.records)

    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["token-status"])
    assert result.exit_code == 0, result.output
    assert f"{path} can be read by other users (mode 0644)" in result.output
    assert f"chmod 600 {path}" in result.output

    # The next refresh writes it 0600 again; then nothing is said.
    manager = _manager(sim, path)
    manager.refresh_after_401(manager.access_token())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    quiet = CliRunner().invoke(main, ["token-status"])
    assert quiet.exit_code == 0 and "chmod" not in quiet.output


def test_refresh_through_a_symlinked_token_file_keeps_the_link(sim, tmp_path):
    real = tmp_path / "volume" / "enphase_tokens.json"
    first = _stored_pair(sim, real)
    link = tmp_path / "config" / "enphase_tokens.json"
    link.parent.mkdir()
    link.symlink_to(real)

    manager = _manager(sim, link)
    token = manager.refresh_after_401(first)
    assert sim.stats.rejected_refreshes == 0
    assert link.is_symlink() and link.resolve() == real
    assert FileTokenStore(real).read().access_token == token
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    # The new pair was renamed into place in the target's directory: no file left over.
    assert list(real.parent.glob(".enphase_tokens.json-*")) == []
    assert list(link.parent.glob(".enphase_tokens.json-*")) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the link to another user")
def test_symlink_owned_by_another_user_is_refused_before_anything_is_sent(sim, tmp_path):
    real = tmp_path / "volume" / "enphase_tokens.json"
    first = _stored_pair(sim, real)
    before = real.read_text()
    link = tmp_path / "config" / "enphase_tokens.json"
    link.parent.mkdir()
    link.symlink_to(real)
    os.lchown(link, 65534, 65534)
    sent = sim.stats.token_refreshes

    with pytest.raises(TokenStoreError) as caught:
        _manager(sim, link).refresh_after_401(first)
    assert sim.stats.token_refreshes == sent
    assert link.is_symlink() and real.read_text() == before
    message = str(caught.value)
    assert f"{link} is a symbolic link owned by another user (uid 65534)" in message
