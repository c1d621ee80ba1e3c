"""Pinning the gateway's certificate on first use: only ever the certificate of the host the
settings name."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from solar_pipeline.simulator.envoy import EnvoySimulator
from solar_pipeline.sources.envoy.tls import CertificatePin
from solar_pipeline_tests.conftest import SYSTEM


def test_a_url_without_a_host_pins_nothing(tmp_path) -> None:
    """A URL like "https://:PORT" (a host left out of ENVOY_URL) must not pin whatever answers
    on this machine's PORT: Python's ssl connects to localhost when the host is None."""
    with EnvoySimulator(SYSTEM, outage=None) as sim:
        port = urlsplit(sim.base_url).port
        pin = CertificatePin(f"https://:{port}", None, tmp_path / "pin.json")
        with pytest.raises(ValueError, match="has no host"):
            pin.fingerprint()
    assert not (tmp_path / "pin.json").exists()


def test_first_use_pins_the_named_host(tmp_path) -> None:
    with EnvoySimulator(SYSTEM, outage=None) as sim:
        pin = CertificatePin(sim.base_url, None, tmp_path / "pin.json")
        assert pin.fingerprint() == (sim.cert_fingerprint, "first-use")
        assert pin.fingerprint() == (sim.cert_fingerprint, "stored")
