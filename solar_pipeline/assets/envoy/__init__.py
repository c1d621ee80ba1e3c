"""The local gateway source: raw answers -> envoy.* readings."""

from solar_pipeline.assets.envoy.provider import PROVIDER
from solar_pipeline.assets.envoy.raw import envoy_responses
from solar_pipeline.assets.envoy.readings import envoy_readings

assets = [envoy_responses, envoy_readings]

__all__ = ["PROVIDER", "assets"]
