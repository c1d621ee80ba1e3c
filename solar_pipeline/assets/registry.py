"""Every vendor the pipeline collects, one line each.

A vendor is a folder under `solar_pipeline/sources/` and one asset module exporting `assets`
and `PROVIDER` (see assets/vendor.py). Its shared edits are its line below and its name in
`sites.VENDORS`, which lets sites name it and creates its tables from the fleet template.
"""

from __future__ import annotations

from types import ModuleType

from solar_pipeline.assets import enphase, envoy, fronius, goodwe, sma, solaredge
from solar_pipeline.assets.provider import Provider

VENDOR_MODULES: tuple[ModuleType, ...] = (
    enphase,
    envoy,
    solaredge,
    sma,
    fronius,
    goodwe,
)

PROVIDERS: dict[str, Provider] = {m.PROVIDER.vendor: m.PROVIDER for m in VENDOR_MODULES}
VENDOR_ASSETS = [a for m in VENDOR_MODULES for a in m.assets]
# What energy.intervals reads: every vendor's typed tables.
INTERVAL_DEPS = [key for p in PROVIDERS.values() for key in p.deps]
