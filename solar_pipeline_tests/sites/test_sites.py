"""The sites file: parsing, errors that say what to fix, secrets read late and never echoed,
and the single-site variables as a fleet of one."""

import os
import textwrap
from pathlib import Path

import pytest

from solar_pipeline.settings import InvalidSettingError, MissingSettingError, Settings
from solar_pipeline.sites import load_sites

FLEET = """
secrets_file: secrets.yaml
sites:
  - site_id: home
    vendor: enphase
    ids: {system_id: 4021157}
    credentials: {api_key: ENPHASE_API_KEY}
  - site_id: barn
    vendor: solaredge
    timezone: America/Denver
    ids: {site_id: 1234567}
    credentials: {api_key: SOLAREDGE_BARN_KEY}
  - site_id: cabin
    vendor: fronius
    timezone: Australia/Sydney
    ids: {url: "http://192.168.1.60"}
"""


@pytest.fixture
def sites_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def write(text: str, secrets: str | None = None, mode: int = 0o600) -> Path:
        path = tmp_path / "sites.yaml"
        path.write_text(textwrap.dedent(text))
        if secrets is not None:
            (tmp_path / "secrets.yaml").write_text(secrets)
            os.chmod(tmp_path / "secrets.yaml", mode)
        monkeypatch.setenv("SOLAR_SITES", str(path))
        return path

    for name in ("ENPHASE_SYSTEM_ID", "ENVOY_URL", "SOLAR_SITE_ID", "SOLAREDGE_BARN_KEY"):
        monkeypatch.delenv(name, raising=False)
    return write


def test_fleet_file_gives_sites_in_their_own_zones(sites_file, monkeypatch):
    sites_file(FLEET, secrets="SOLAREDGE_BARN_KEY: from-the-file\n")
    home, barn, cabin = load_sites(Settings.from_env())
    assert (home.site_id, home.vendor, home.timezone) == ("home", "enphase", "Europe/Amsterdam")
    assert (barn.timezone, barn.ids) == ("America/Denver", {"site_id": "1234567"})
    assert cabin.timezone == "Australia/Sydney"
    # Secrets are read when asked for: the environment first, then the private secrets file.
    assert barn.secret("api_key") == "from-the-file"
    monkeypatch.setenv("SOLAREDGE_BARN_KEY", "from-the-environment")
    assert barn.secret("api_key") == "from-the-environment"
    monkeypatch.delenv("ENPHASE_API_KEY", raising=False)
    with pytest.raises(MissingSettingError, match=r"ENPHASE_API_KEY.*site 'home'"):
        home.secret("api_key")


def test_a_secrets_file_others_can_read_is_refused(sites_file):
    sites_file(FLEET, secrets="SOLAREDGE_BARN_KEY: x\n", mode=0o644)
    barn = load_sites()[1]
    with pytest.raises(InvalidSettingError, match="chmod 600"):
        barn.secret("api_key")


def test_a_pasted_secret_is_refused_without_being_echoed(sites_file):
    sites_file(
        """
        sites:
          - site_id: barn
            vendor: solaredge
            ids: {site_id: 1234567}
            credentials: {api_key: "L4QLVQ1LOKCQX2193VSEICXW61NP6B1O"}
        """
    )
    with pytest.raises(InvalidSettingError) as err:
        load_sites()
    assert "must name an environment variable" in str(err.value)
    assert "L4QLVQ1LOKCQX2193VSEICXW61NP6B1O" not in str(err.value)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- {site_id: a, vendor: tesla}", "vendor 'tesla' is not one of"),
        ("- {site_id: a, vendor: sma, timezone: Mars/Olympus}", "not an IANA time zone"),
        ("- {site_id: 'a b', vendor: sma}", "site_id 'a b'"),
        ("- {site_id: a, vendor: sma, password: x}", "unknown keys"),
        (
            "- {site_id: a, vendor: sma, ids: {plant_id: 1}}\n"
            "  - {site_id: a, vendor: sma, ids: {plant_id: 2}}",
            "appears twice",
        ),
        (
            "- {site_id: a, vendor: envoy}\n  - {site_id: a, vendor: sma, ids: {plant_id: 1}}",
            "appears twice",
        ),
        ("- {site_id: a, vendor: envoy}\n  - {site_id: b, vendor: envoy}", "one per deployment"),
        ("- {site_id: a, vendor: enphase, timezone: Asia/Tokyo}", "set SOLAR_TIMEZONE=Asia/Tokyo"),
    ],
)
def test_mistakes_name_the_site_and_what_to_fix(sites_file, entry, message):
    sites_file(f"sites:\n  {entry}\n")
    with pytest.raises(InvalidSettingError, match=message):
        load_sites()


def test_missing_or_broken_file_names_the_variable(sites_file, monkeypatch, tmp_path):
    monkeypatch.setenv("SOLAR_SITES", str(tmp_path / "nope.yaml"))
    with pytest.raises(InvalidSettingError, match=r"SOLAR_SITES=.*no such file"):
        load_sites()
    sites_file("sites: [unclosed\n")
    with pytest.raises(InvalidSettingError, match=r"SOLAR_SITES=.*not valid YAML"):
        load_sites()


def test_single_site_variables_are_a_fleet_of_one(monkeypatch):
    monkeypatch.delenv("SOLAR_SITES", raising=False)
    monkeypatch.delenv("SOLAR_SITE_ID", raising=False)
    monkeypatch.setenv("ENPHASE_SYSTEM_ID", "4021157")
    monkeypatch.setenv("ENVOY_URL", "https://envoy.local")
    monkeypatch.setenv("ENVOY_SERIAL", "202241095486")
    cloud, gateway = load_sites(Settings.from_env())
    # One site, two sources: the energy tables already name it after the cloud system.
    assert cloud.site_id == gateway.site_id == "enphase:4021157"
    assert (cloud.vendor, gateway.vendor) == ("enphase", "envoy")
    assert gateway.ids == {"url": "https://envoy.local", "serial": "202241095486"}
    monkeypatch.delenv("ENPHASE_SYSTEM_ID")
    (only,) = load_sites(Settings.from_env())
    assert only.site_id == "envoy:202241095486"
    monkeypatch.delenv("ENVOY_URL")
    assert load_sites(Settings.from_env()) == []


def test_an_enphase_system_and_its_gateway_may_share_a_site(sites_file, monkeypatch):
    monkeypatch.setenv("SOLAR_TIMEZONE", "Europe/Amsterdam")
    sites_file(
        """
        sites:
          - {site_id: home, vendor: enphase, timezone: Europe/Amsterdam}
          - {site_id: home, vendor: envoy, timezone: Europe/Amsterdam}
        """
    )
    assert [s.vendor for s in load_sites()] == ["enphase", "envoy"]
