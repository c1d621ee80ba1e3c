"""Thin ConfigurableResources: configuration in, ready-made clients out."""

from solar_pipeline.resources.enphase import EnphaseCloudResource
from solar_pipeline.resources.envoy import EnvoyResource
from solar_pipeline.resources.warehouse import DuckDBWarehouse

__all__ = ["DuckDBWarehouse", "EnphaseCloudResource", "EnvoyResource"]
