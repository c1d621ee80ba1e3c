"""A damaged token file, or a directory where it should be, is an error that names the file and
the exact commands that fix it, in a run and in `solar-pipeline token-status`, and never shows
what is in the file (it holds tokens). A file that cannot take a pair is found out before an
authorization code or refresh token is spent on it."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from solar_pipeline.cli import main
from solar_pipeline.sources.enphase.tokens import FileTokenStore, TokenPair, TokenStoreError
from solar_pipeline.sources.sma.oauth import sma_auth
from solar_pipeline_tests.conftest import make_enphase
from solar_pipeline_tests.helpers import failure_message, run_range

LEAK = "LEAKED-REFRESH-0123456789"
DAMAGED: dict[str, str | bytes] = {
    "truncated": '{"access_token": "LEAKED-ACCESS", "refresh_token": "' + LEAK,
    "a list": json.dumps([LEAK]),
    "a field of the wrong type": json.dumps(
        {
            "access_token": LEAK,
            "refresh_token": 5,
            "access_expires_at": 1,
            "refresh_expires_at": 2,
            "obtained_at": 3,
        }
    ),
    "fields missing": json.dumps({"refresh_token": LEAK}),
    "not text": LEAK.encode() + b"\xff\xfe\x00",
}
RESTORE = "solar-pipeline restore --from BACKUP_FOLDER --tokens-only"
REAUTHORIZE = "solar-pipeline enphase-auth"


def _damage(path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "a directory":
        (path / "something").mkdir(parents=True)
    else:
        content = DAMAGED[kind]
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        path.chmod(0o600)


def _says_what_to_do(message: str, path: Path, kind: str) -> None:
    assert str(path) in message
    assert LEAK not in message and "LEAKED" not in message
    assert RESTORE in message and REAUTHORIZE in message
    if kind == "a directory":
        assert f"rmdir {path}" in message
    else:
        assert f"mv {path} {path}.damaged" in message


@pytest.mark.parametrize("kind", [*DAMAGED, "a directory"])
def test_token_status_names_the_file_and_the_fix(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("SOLAR_DATA_DIR", str(tmp_path))
    path = tmp_path / "enphase_tokens.json"
    _damage(path, kind)
    result = CliRunner().invoke(main, ["token-status"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    _says_what_to_do(result.output, path, kind)


@pytest.mark.parametrize("kind", ["truncated", "a directory"])
def test_cloud_run_with_a_damaged_store_names_the_file_and_the_fix(
    kind, sim, seeded, warehouse, tmp_path
):
    path = tmp_path / "enphase_tokens.json"
    _damage(path, kind)
    result = run_range(
        make_enphase(sim, tmp_path), warehouse, "2025-06-10", "2025-06-10", raise_on_error=False
    )
    assert not result.success
    _says_what_to_do(failure_message(result), path, kind)
    assert sim.stats.token_refreshes == 0


def test_enphase_auth_refuses_a_directory_before_spending_the_code(sim, tmp_path, monkeypatch):
    for name, value in {
        "SOLAR_DATA_DIR": str(tmp_path),
        "ENPHASE_API_URL": sim.base_url,
        "ENPHASE_CLIENT_ID": sim.client_id,
        "ENPHASE_CLIENT_SECRET": sim.client_secret,
    }.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "enphase_tokens.json"
    path.mkdir()
    code = sim.issue_code()
    refused = CliRunner().invoke(main, ["enphase-auth", "--code", code])
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert f"rmdir {path}" in refused.output

    # The code was not spent: once the directory is gone, the same code works.
    path.rmdir()
    done = CliRunner().invoke(main, ["enphase-auth", "--code", code])
    assert done.exit_code == 0, done.output
    assert CliRunner().invoke(main, ["token-status"]).exit_code == 0  # a whole pair in the store


def test_damaged_sma_store_says_the_next_run_gets_a_new_app_token(tmp_path, monkeypatch):
    monkeypatch.delenv("SMA_TOKEN_STORE", raising=False)
    path = tmp_path / "sma_tokens.json"
    _damage(path, "truncated")
    _, tokens = sma_auth("app-id", "app-secret", tmp_path)
    with pytest.raises(TokenStoreError) as caught:
        tokens.access_token()
    message = str(caught.value)
    assert str(path) in message and "LEAKED" not in message
    assert f"mv {path} {path}.damaged" in message
    assert "SMA_CLIENT_ID and SMA_CLIENT_SECRET" in message
    assert REAUTHORIZE not in message  # no Enphase advice for the SMA store


@pytest.mark.parametrize("exp", [1e300, float("inf"), -5, 10**30])
def test_a_pair_with_absurd_expiry_claims_is_stored_readable(exp, tmp_path):
    """Whatever a token answer claims, the pair it gives is stored so that it reads back:
    an unreadable store would cost the refresh token just received."""
    token = jwt.encode({"exp": exp, "jti": "x"}, "k" * 32, algorithm="HS256")
    pair = TokenPair.from_token_response(
        {"access_token": token, "refresh_token": token}, 1_700_000_000, "refresh"
    )
    store = FileTokenStore(tmp_path / "enphase_tokens.json")
    store.write(pair)
    assert store.read() == pair
    assert (
        CliRunner().invoke(main, ["token-status"], env={"SOLAR_DATA_DIR": str(tmp_path)}).exit_code
        == 0
    )
