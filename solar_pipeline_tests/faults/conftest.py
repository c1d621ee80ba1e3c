"""The gateway fixtures of the Envoy tests, shared with the fault sequences here."""

from solar_pipeline_tests.envoy.conftest import live_envoy

__all__ = ["live_envoy"]
