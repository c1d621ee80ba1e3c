"""One poll of the gateway: which endpoints, in which order, with which fallbacks.

Requests go one at a time (the gateway is a small device that lags when hammered):
production first, the v1 summary only when production.json is unusable (R3.9 answers it with
an HTML page), per-inverter data from /ivp/pdm/device_data where the firmware has it (8.2+)
plus the v1 inverter list (device_data lists at most 50 devices), and the CT meters on metered
hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solar_pipeline.sources.envoy.client import EnvoyClient, EnvoyResponse
from solar_pipeline.sources.envoy.errors import EnvoyUnreachable
from solar_pipeline.sources.envoy.parse import EnvoyInfo
from solar_pipeline.sources.parsing import loads

PRODUCTION = "/production.json?details=1"
PRODUCTION_V1 = "/api/v1/production"
INVERTERS_V1 = "/api/v1/production/inverters"
DEVICE_DATA = "/ivp/pdm/device_data"
METERS = "/ivp/meters"
METER_READINGS = "/ivp/meters/readings"
DEVICE_DATA_MIN_VERSION = (8, 2)


@dataclass
class PollResult:
    info: EnvoyInfo | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _json_body(resp: EnvoyResponse) -> Any:
    """The body as JSON, None when it is not (also when nested too deeply to read: the answer
    is kept raw and the readings asset flags it)."""
    if resp.status != 200 or not resp.body or resp.error is not None:
        return None
    try:
        return loads(resp.body)
    except ValueError:
        return None


def _usable_json(resp: EnvoyResponse, key: str | None = None) -> bool:
    data = _json_body(resp)
    if data is None:
        return False
    return key is None or (isinstance(data, dict) and key in data)


def _complete_device_data(resp: EnvoyResponse) -> bool:
    """device_data answered and lists every device (it stops at deviceDataLimit, 50)."""
    data = _json_body(resp)
    if not isinstance(data, dict) or "deviceCount" not in data:
        return False
    count, limit = data.get("deviceCount"), data.get("deviceDataLimit")
    if not isinstance(limit, int) or isinstance(limit, bool):
        return True
    # A count that is not a number says nothing about the limit: ask the v1 list as well.
    return isinstance(count, int | float) and not isinstance(count, bool) and count < limit


def poll_once(client: EnvoyClient) -> PollResult:
    """Fetch every endpoint once. An unreachable gateway is a recorded outcome, not an error;
    configuration problems (firmware, certificate, credentials) raise."""
    result = PollResult()
    try:
        info = client.connect()
    except EnvoyUnreachable as exc:
        result.error = str(exc)
        return result
    result.info = info
    endpoints_done = []

    def get(endpoint: str) -> EnvoyResponse:
        resp = client.get(endpoint)
        endpoints_done.append(resp)
        return resp

    production = get(PRODUCTION)
    if production.status is None:
        # The gateway stopped answering mid-poll (the 23:00 reset): try again next poll.
        result.error = f"{PRODUCTION}: {production.error}"
        return result
    if not _usable_json(production, "production"):
        get(PRODUCTION_V1)
    device_data = get(DEVICE_DATA) if info.version[:2] >= DEVICE_DATA_MIN_VERSION else None
    if device_data is None or not _complete_device_data(device_data):
        get(INVERTERS_V1)
    if info.imeter:
        get(METERS)
        get(METER_READINGS)
    failed = [r for r in endpoints_done if r.status is None]
    if failed:
        result.error = "; ".join(f"{r.endpoint}: {r.error}" for r in failed)
    return result
