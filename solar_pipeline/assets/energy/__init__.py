"""Vendor-neutral energy: every source's readings -> intervals -> daily and monthly energy."""

from solar_pipeline.assets.energy.daily import daily_energy
from solar_pipeline.assets.energy.intervals import intervals
from solar_pipeline.assets.energy.inverters import daily_inverter_energy
from solar_pipeline.assets.energy.monthly import monthly_energy

assets = [intervals, daily_energy, daily_inverter_energy, monthly_energy]
