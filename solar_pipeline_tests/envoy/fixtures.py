"""What each pyenphase fixture folder holds, read by hand from the files (not by the parser).

The folders live outside the repo, in /work/shared/fixtures/envoy (MIT, pyenphase; the licence
travels with them there). Every number below was copied from the body files, so the parser
tests check the parsers against an independent reading:

- production_w / lifetime_wh: the active `eim` production entry (phase None) of
  `production.json_details_1` when that file exists with code 200, else of `production.json`;
  with no active eim, that file's `inverters` entry; when production.json is an HTML page,
  `/api/v1/production` (unless all its counters are 0).
- consumption_w / net_consumption_w: the active total-/net-consumption eim entry of that same
  file (None when there is none or its activeCount is 0).
- inverter_count: distinct serialNumber values in `api_v1_production_inverters`, all devTypes.
- meters: entries of `ivp_meters` that have a reading with the same eid (0 without the files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(
    os.environ.get("SOLAR_ENVOY_FIXTURES")
    or Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "envoy"
)
if not FIXTURES.is_dir():
    # Fail loudly: skipping would let the firmware tests pass without running.
    raise RuntimeError(
        f"Envoy fixtures not found at {FIXTURES}: the tests read shared/fixtures/envoy beside the "
        "checkout (../shared); set SOLAR_ENVOY_FIXTURES to use another copy."
    )


@dataclass(frozen=True)
class Expected:
    folder: str
    serial: str
    firmware: str
    supported: bool  # False only for firmware < R3.9 (3.7.0)
    production_w: float | None  # w_now of the primary production reading
    lifetime_wh: float | None  # wh_lifetime of that same reading
    production_source: str | None  # "eim" | "inverters" | "api_v1"
    consumption_w: float | None  # w_now of the active total-consumption eim entry
    net_consumption_w: float | None
    inverter_count: int | None  # distinct serials in /api/v1/production/inverters
    meters: int  # rows with phase None that parse_meters returns


# fmt: off
EXPECTED: list[Expected] = [
    # No JSON at all: production.json is an HTML "Page Not Found", no /api/v1 files.
    Expected("3.7.0", "121430030548", "D3.7.0", False,
             None, None, None, None, None, None, 0),
    # production.json is HTML -> /api/v1/production; 41 inverters without devType.
    Expected("3.17.3", "121430030548", "D3.17.3", True,
             5463, 93706280, "api_v1", None, None, 41, 0),
    Expected("3.9.36", "121426016034", "R3.9.36", True,
             1271, 6012540, "api_v1", None, None, 12, 0),
    Expected("4.10.35", "121938119871", "R4.10.35", True,
             165.53, 26785327.351, "eim", 806.405, 640.874, 19, 2),
    # Non-metered: only the inverters entry; /ivp/meters is [].
    Expected("5.0.62", "121621012167", "D5.0.62", True,
             7904, 133798554, "inverters", None, None, 40, 0),
    # No ivp_meters capture in this folder.
    Expected("7.3.130", "121729017746", "D7.3.130", True,
             178.495, 3659506.105, "eim", 1393.191, 1214.696, 12, 0),
    # Consumption eim entries have activeCount 0 (net CT disabled): no consumption reading.
    Expected("7.3.130_no_consumption", "202305058594", "D7.3.130", True,
             3780.646, 4545926.403, "eim", None, None, 15, 2),
    # Night: eim production slightly negative.
    Expected("7.3.466_with_cts_3phase", "123456789012", "D7.3.466", True,
             -6.481, 4351113.2, "eim", 209.084, 215.565, 7, 2),
    Expected("7.3.517", "122027033238", "D7.3.517", True,
             4556.139, 19230313.461, "eim", 3791.075, -765.064, 22, 0),
    Expected("7.6.114_without_cts", "122309122530", "D7.6.114", True,
             586, 351236, "inverters", None, None, 13, 0),
    # CTs disabled: every eim entry has activeCount 0 -> the inverters entry.
    Expected("7.6.175_total", "122041077756", "D7.6.175", True,
             1322, 1152866, "inverters", None, None, 14, 2),
    Expected("7.6.175_with_cts", "122238082763", "D7.6.175", True,
             488.154, 3183793.303, "eim", 476.686, -11.468, 7, 2),
    Expected("7.6.185_with_cts_and_battery_3t", "122238082690", "D7.6.185", True,
             -0.957, 2432969.956, "eim", 523.579, 524.536, 5, 2),
    Expected("8.1.41", "xxxxxxxxxxxx", "D8.1.41", True,
             13028.54, 1510198.655, "eim", 5216.083, -7812.457, 44, 0),
    # Storage CT: three meters.
    Expected("8.2.127_with_3cts_and_battery_split", "123456789012", "D8.2.127", True,
             1714.424, 3165834.272, "eim", 1843.831, 129.407, 5, 3),
    # Values from production.json_details_1, not production.json (a different capture).
    Expected("8.2.4345_with_device_data", "122446001637", "D8.2.4345", True,
             734.83, 1243811.514, "eim", 1014.016, 279.186, 15, 2),
    # 17 PCU + 3 ACB (devType 11) in the inverter list.
    Expected("8.2.4382_ACB", "123456789012", "D8.2.4382", True,
             311.12, 19213420.774, "eim", 330.26, 19.141, 20, 2),
    # 7 CTs; readings carry an 8th eid (1023410688) that is in no CT list.
    Expected("8.3.1598_collar", "123456789012", "D8.3.1598", True,
             0.0, 47077.959, "eim", 3774.309, 3774.309, 17, 7),
    Expected("8.3.5169_with_generator", "202439990001", "D8.3.5169", True,
             2885.154, 11567953.818, "eim", 3050.455, 165.301, 20, 2),
]
# fmt: on
