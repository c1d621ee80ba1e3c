"""Simulators of the solar APIs the pipeline reads, served over real HTTP for tests and demos."""

from solar_pipeline.simulator.enphase_cloud import EnphaseCloudSimulator
from solar_pipeline.simulator.solar_model import SystemSpec

__all__ = ["EnphaseCloudSimulator", "SystemSpec"]
