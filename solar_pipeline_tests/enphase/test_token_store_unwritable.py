"""A token store that cannot be written (immutable directory, full disk) never costs the rotated
refresh token: nothing is sent when the store cannot take the answer, and an answer that
arrives just as the store stops taking writes is kept where the next run finds it. Checked
against the strict simulator (a spent refresh token is refused), so "the next refresh
succeeds" proves no token was lost."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import requests

from solar_pipeline.sources.enphase.oauth import OAuthClient
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenManager, TokenStoreError
from solar_pipeline.sources.http import build_session
from solar_pipeline_tests.conftest import SYSTEM
from solar_pipeline_tests.unwritable import Freezer, fill


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Where a pair goes when the store's own directory refuses it: never the real home here.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def _manager(sim, store_path: Path) -> TokenManager:
    oauth = OAuthClient(sim.base_url, sim.client_id, sim.client_secret, build_session(0.01))
    return TokenManager(FileTokenStore(store_path), oauth)


def _works(sim, access_token: str) -> bool:
    return (
        requests.get(
            f"{sim.base_url}/api/v4/systems/{SYSTEM.system_id}/summary",
            headers={"Authorization": f"Bearer {access_token}", "key": sim.api_key},
            timeout=5,
        ).status_code
        == 200
    )


def _stored_pair(sim, store_path: Path) -> str:
    """A store holding a real pair (one refresh of a fresh seed); returns its access token."""
    manager = _manager(sim, store_path)
    assert manager.seed_if_empty(sim.mint_refresh_token())
    return manager.access_token()


def _temp_files(store_path: Path) -> list[Path]:
    return sorted(store_path.parent.glob(f".{store_path.name}-*"))


def _next_refresh_works(sim, store_path: Path) -> None:
    """The next run refreshes with whatever pair the store hands it: the strict simulator
    refuses a spent refresh token, so success means the live one was kept."""
    rejected = sim.stats.rejected_refreshes
    manager = _manager(sim, store_path)
    current = manager.current()
    assert current is not None
    token = manager.refresh_after_401(current.access_token)
    assert sim.stats.rejected_refreshes == rejected
    assert _works(sim, token)
    stored = FileTokenStore(store_path).read()
    assert stored is not None and stored.access_token == token
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600


def test_immutable_store_directory_sends_no_refresh(sim, tmp_path, freezer: Freezer):
    store_path = tmp_path / "tokens" / "enphase_tokens.json"
    access = _stored_pair(sim, store_path)
    sent = sim.stats.token_refreshes
    freezer.freeze(store_path.parent)

    with pytest.raises(TokenStoreError) as caught:
        _manager(sim, store_path).refresh_after_401(access)
    # The refresh token was not spent: the request never left.
    assert sim.stats.token_refreshes == sent
    message = str(caught.value)
    assert str(store_path.parent) in message
    assert "nothing was sent" in message

    freezer.thaw(store_path.parent)
    _next_refresh_works(sim, store_path)


def test_full_disk_sends_no_refresh(sim, small_tmpfs: Path):
    store_path = small_tmpfs / "enphase_tokens.json"
    access = _stored_pair(sim, store_path)
    sent = sim.stats.token_refreshes
    filler = fill(small_tmpfs)

    with pytest.raises(TokenStoreError) as caught:
        _manager(sim, store_path).refresh_after_401(access)
    assert sim.stats.token_refreshes == sent
    assert "No space left on device" in str(caught.value)

    filler.unlink()
    _next_refresh_works(sim, store_path)


def test_directory_frozen_while_the_refresh_is_answered_keeps_the_new_pair(
    sim, tmp_path, freezer: Freezer
):
    store_path = tmp_path / "tokens" / "enphase_tokens.json"
    access = _stored_pair(sim, store_path)
    sent = sim.stats.token_refreshes
    manager = _manager(sim, store_path)

    def freeze_on_answer(resp: requests.Response, *args: object, **kwargs: object) -> None:
        if resp.request.path_url.startswith("/oauth/token"):
            freezer.freeze(store_path.parent)

    manager.oauth.session.hooks["response"].append(freeze_on_answer)  # type: ignore[attr-defined]
    with pytest.raises(TokenStoreError) as caught:
        manager.refresh_after_401(access)
    assert sim.stats.token_refreshes == sent + 1  # the old refresh token is spent now

    # The new pair is in the temporary file made before the request; the message names it.
    (kept,) = _temp_files(store_path)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert str(kept) in str(caught.value)

    # While the directory stays frozen, the next run uses the kept pair's access token.
    later = _manager(sim, store_path)
    assert later.access_token() != access
    assert _works(sim, later.access_token())

    freezer.thaw(store_path.parent)
    _next_refresh_works(sim, store_path)
    assert _temp_files(store_path) == []  # adopted into the store, then removed


def test_pair_the_store_directory_cannot_hold_goes_to_the_state_directory(
    sim, tmp_path, state_home: Path, freezer: Freezer
):
    store_path = tmp_path / "tokens" / "enphase_tokens.json"
    access = _stored_pair(sim, store_path)
    manager = _manager(sim, store_path)

    def freeze_everything(resp: requests.Response, *args: object, **kwargs: object) -> None:
        # The temporary file (if one was made before the request) and the directory.
        for path in [*_temp_files(store_path), store_path.parent]:
            freezer.freeze(path)

    manager.oauth.session.hooks["response"].append(freeze_everything)  # type: ignore[attr-defined]
    with pytest.raises(TokenStoreError) as caught:
        manager.refresh_after_401(access)
    (rescued,) = (state_home / "solar-pipeline" / "rescued-tokens").iterdir()
    assert stat.S_IMODE(rescued.stat().st_mode) == 0o600
    assert str(rescued) in str(caught.value)
    assert os.path.getsize(rescued) > 0

    freezer.thaw_all()
    _next_refresh_works(sim, store_path)
    assert not rescued.exists()  # moved into the store
