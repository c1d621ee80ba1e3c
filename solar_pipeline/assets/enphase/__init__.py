"""The Enphase cloud source: raw answers -> enphase.* tables."""

from solar_pipeline.assets.enphase.energy import daily_energy
from solar_pipeline.assets.enphase.provider import PROVIDER
from solar_pipeline.assets.enphase.raw import enphase_responses
from solar_pipeline.assets.enphase.snapshots import alarms, events, system_summary
from solar_pipeline.assets.enphase.telemetry import consumption_intervals, production_intervals

assets = [
    enphase_responses,
    system_summary,
    events,
    alarms,
    production_intervals,
    consumption_intervals,
    daily_energy,
]

__all__ = ["PROVIDER", "assets"]
