"""Every field of the sites file is checked for what it may hold (type, characters, length,
the ids each vendor needs), with an error that names the field; a value that may be a secret
is never repeated, and a missing variable is still named when its name is plainly a name."""

from __future__ import annotations

import itertools
import os
import textwrap
from pathlib import Path

import pytest

from solar_pipeline.settings import InvalidSettingError, MissingSettingError, Settings
from solar_pipeline.sites import load_sites

# A SolarEdge-style key (32 upper-case letters and digits), pasted with an underscore.
PASTED_KEY = "L4QLVQ1LOKCQX2193_VSEICXW61NP6B1O"
# A password made of words: shaped exactly like a variable name.
PASSPHRASE = "CORRECT_HORSE_BATTERY_STAPLE"


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def write(text: str, secrets: str | None = None) -> Path:
        path = tmp_path / "sites.yaml"
        path.write_text(textwrap.dedent(text))
        if secrets is not None:
            (tmp_path / "secrets.yaml").write_text(secrets)
            os.chmod(tmp_path / "secrets.yaml", 0o600)
        monkeypatch.setenv("SOLAR_SITES", str(path))
        return path

    for name in ("ENPHASE_SYSTEM_ID", "ENVOY_URL", "SOLAR_SITE_ID", PASSPHRASE):
        monkeypatch.delenv(name, raising=False)
    return write


def _entry(**fields: str) -> str:
    body = {"site_id": "barn", "vendor": "solaredge", "ids": "{site_id: 1234567}", **fields}
    return "sites:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in body.items() if v) + "\n"


def _refused(sites, text: str, *, match: str, hidden: str | None = None) -> str:
    sites(text)
    with pytest.raises(InvalidSettingError, match=match) as err:
        load_sites()
    message = str(err.value)
    assert len(message) < 600, message  # a hostile value is not echoed at length
    assert "\x1b" not in message and "\n" not in message
    if hidden:
        assert hidden not in message
    return message


@pytest.mark.parametrize(
    ("site_id", "why"),
    [
        ('"home\\n"', "a trailing newline"),
        ('"home\\x1b[31m"', "a control character"),
        ('"<script>x</script>"', "markup"),
        ('"' + "a" * 65 + '"', "too long"),
        ("[home]", "not text"),
        ("true", "a boolean"),
    ],
)
def test_a_site_id_is_letters_digits_and_few_signs_and_short(sites, site_id, why):
    _refused(sites, _entry(site_id=site_id), match=r"sites\[0\]: site_id ")


def test_a_numeric_site_id_is_text(sites):
    sites(_entry(site_id="42"))
    assert load_sites()[0].site_id == "42"


def test_solar_site_id_follows_the_same_rule(monkeypatch):
    monkeypatch.delenv("SOLAR_SITES", raising=False)
    monkeypatch.setenv("SOLAR_SITE_ID", "home\x1bx")
    with pytest.raises(InvalidSettingError, match="SOLAR_SITE_ID"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("vendor", "x" * 5000, r"vendor .* is not one of"),
        ("vendor", "[solaredge]", r"vendor .* is not one of"),
        ("timezone", "a" * 300, r"timezone .* is not an IANA time zone"),
        ("timezone", '"Europe/Amsterdam\\n"', r"timezone .* is not an IANA time zone"),
        ("timezone", "[Europe/Amsterdam]", r"timezone .* is not an IANA time zone"),
        ("timezone", "localtime", r"timezone .* is not an IANA time zone"),
    ],
)
def test_vendor_and_timezone_are_short_known_text(sites, field, value, match):
    _refused(sites, _entry(**{field: value}), match=match)


def test_solar_timezone_that_is_too_long_names_the_variable(monkeypatch):
    monkeypatch.setenv("SOLAR_TIMEZONE", "a" * 300)
    with pytest.raises(InvalidSettingError, match="SOLAR_TIMEZONE"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("vendor", "ids", "match"),
    [
        ("solaredge", "{}", r"ids\.site_id is missing"),
        ("solaredge", "{site_id: 12ab}", r"ids\.site_id must be"),
        ("solaredge", "{site_id: [1, 2]}", r"ids\.site_id must be"),
        ("solaredge", "{site_id: 1, auth: v3}", r"ids\.auth must be"),
        ("solaredge", "{site_id: 1, sytem_id: 2}", r"ids: unknown name 'sytem_id'.*site_id"),
        ("sma", '{plant_id: "../../v2/x?y=1"}', r"ids\.plant_id must be"),
        ("goodwe", '{station_id: "a b"}', r"ids\.station_id must be"),
        ("goodwe", "{station_id: " + "a" * 300 + "}", r"ids\.station_id must be"),
        ("fronius", '{url: "ftp://192.168.1.60"}', r"ids\.url must be an http"),
        ("fronius", '{url: "192.168.1.60"}', r"ids\.url must be an http"),
        ("fronius", '{url: "http://"}', r"ids\.url must be an http"),
        ("fronius", '{url: "http://192.168.1.60\\n"}', r"ids\.url must be an http"),
        ("enphase", "{system_id: abc}", r"ids\.system_id must be"),
    ],
)
def test_each_vendor_gets_the_ids_it_needs(sites, vendor, ids, match):
    _refused(sites, _entry(vendor=vendor, ids=ids, timezone="Europe/Amsterdam"), match=match)


@pytest.mark.parametrize(
    "url",
    [
        "http://admin:s3cret-pw@192.168.1.60",
        "https://monitoringapi.solaredge.com/?api_key=s3cret-pw",
        "https://monitoringapi.solaredge.com/#s3cret-pw",
    ],
)
def test_a_url_carrying_a_secret_is_refused_without_echo(sites, url):
    _refused(
        sites,
        _entry(ids=f'{{site_id: 1, api_url: "{url}"}}'),
        match=r"ids\.api_url must .*no user, password, query",
        hidden="s3cret-pw",
    )


def test_alias_bombs_in_ids_are_refused_not_expanded(sites):
    """Anchors under an `x-` key (the docker-compose habit) are allowed; a list of lists of
    aliases where an id belongs is refused without being turned into text (10**6 items here,
    kept small so the unfixed code only spends a second on it)."""
    levels = "abcdef"
    bomb = "x-anchors:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"  {c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in itertools.pairwise(levels)
    )
    _refused(sites, bomb + _entry(ids="{site_id: *f}"), match=r"ids\.site_id must be")


@pytest.mark.parametrize(
    ("credentials", "match", "hidden"),
    [
        (f"{{api_key: {PASTED_KEY}}}", "must name an environment variable", PASTED_KEY),
        ("{api_key: " + "_".join(["PART"] * 20) + "}", "must name an environment variable", None),
        ("{api_key: [A_B]}", "must name an environment variable", None),
        ("{apikey: SOLAREDGE_BARN_KEY}", r"credentials: unknown name 'apikey'.*api_key", None),
        (f"{{{PASTED_KEY}: SOLAREDGE_BARN_KEY}}", r"credentials: unknown name", PASTED_KEY),
    ],
)
def test_credentials_are_known_names_naming_variables(sites, credentials, match, hidden):
    _refused(sites, _entry(credentials=credentials), match=match, hidden=hidden)


def test_a_passphrase_shaped_like_a_variable_is_not_echoed_when_missing(sites):
    """It cannot be told from a variable name by its shape, so it is accepted; but a name
    holding none of the words credential variables are named with is not repeated."""
    sites(_entry(credentials=f"{{api_key: {PASSPHRASE}}}"))
    (barn,) = load_sites()
    with pytest.raises(InvalidSettingError) as err:
        barn.secret("api_key")
    message = str(err.value)
    assert PASSPHRASE not in message
    assert "credentials.api_key" in message and "barn" in message
    assert "SOLAREDGE_BARN_API_KEY" in message  # the name it suggests instead
    # Once set, it is read like any other variable.
    os.environ[PASSPHRASE] = "the-key"
    try:
        assert barn.secret("api_key") == "the-key"
    finally:
        del os.environ[PASSPHRASE]


@pytest.mark.parametrize(
    ("vendor", "credentials", "ids"),
    [
        ("solaredge", "{api_key: SOLAREDGE_COTTAGE_KEY}", "{site_id: 3179485}"),
        ("goodwe", "{account: GOODWE_FARM_ACCOUNT, password: GOODWE_FARM_PASSWORD}", None),
        ("sma", "{client_id: SMA_CLIENT_ID, client_secret: SMA_CLIENT_SECRET}", None),
        ("solaredge", "{api_key: SE_SITE_3179485_API_KEY}", "{site_id: 3179485}"),
    ],
)
def test_documented_variable_names_are_named_when_missing(
    sites, monkeypatch, vendor, credentials, ids
):
    ids = ids or {"goodwe": "{station_id: 7d1c0e6a-2b55-4a0e-9f4e-5a1c2b3d4e5f}"}.get(
        vendor, "{plant_id: 5150004}"
    )
    sites(_entry(vendor=vendor, credentials=credentials, ids=ids))
    (site,) = load_sites()
    for name, ref in site.credentials.items():
        monkeypatch.delenv(ref, raising=False)
        with pytest.raises(MissingSettingError, match=f"Set the environment variable {ref} "):
            site.secret(name)


def test_the_file_itself_is_checked(sites):
    _refused(
        sites, "secret_file: s.yaml\nsites: []\n", match=r"unknown top-level key 'secret_file'"
    )
    _refused(sites, "secrets_file: [a]\nsites: []\n", match=r"secrets_file must be a file name")
    _refused(sites, "sites:\n  - {1: a, site_id: b}\n", match=r"sites\[0\].*unknown")


def test_a_secrets_file_value_must_be_text(sites, monkeypatch):
    monkeypatch.delenv("SOLAREDGE_BARN_KEY", raising=False)
    sites(
        "secrets_file: secrets.yaml\n" + _entry(credentials="{api_key: SOLAREDGE_BARN_KEY}"),
        secrets="SOLAREDGE_BARN_KEY: [a, b]\n",
    )
    (barn,) = load_sites()
    with pytest.raises(InvalidSettingError, match=r"SOLAREDGE_BARN_KEY.*must be text"):
        barn.secret("api_key")
