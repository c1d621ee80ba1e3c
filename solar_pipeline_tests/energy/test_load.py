"""The mapping from source tables to intervals keeps each interval's figure."""

from datetime import UTC, datetime, timedelta

from solar_pipeline.assets.envoy.provider import envoy_intervals
from solar_pipeline.energy.fill import fill_anomalies
from solar_pipeline.energy.model import CONSUMPTION_PREFERENCE
from solar_pipeline.sites import Site

GATEWAY = Site("s", "envoy", "UTC")


def test_an_anomaly_is_filled_only_for_the_figure_its_counter_measures(warehouse):
    t0 = datetime(2025, 6, 10, 10, tzinfo=UTC)
    with warehouse.connect() as conn:
        # The inverters' production counter wraps between 10:15 and 10:30; consumption is fine.
        for n, (inverters, consumption) in enumerate(
            [
                (5_000_000, 9_000_000),
                (5_000_500, 9_000_100),
                (3_807_453.5, 9_000_200),
                (3_808_000, 9_000_300),
            ]
        ):
            at = t0 + timedelta(minutes=15 * n)
            for measurement, source, value in (
                ("production", "inverters", inverters),
                ("total-consumption", "eim", consumption),
            ):
                conn.execute(
                    "INSERT INTO envoy.production_readings (reading_at, fetched_at, envoy_serial,"
                    " measurement, source, wh_lifetime, raw_id) VALUES (?, ?, 's', ?, ?, ?, 0)",
                    [at, at, measurement, source, value],
                )
        found = envoy_intervals(conn, GATEWAY, t0, t0 + timedelta(hours=1))
    wrap = [(f, i) for f, i in found if "counter_wrap" in i.flags]
    assert [f for f, _ in wrap] == ["produced_wh"]
    consumed = fill_anomalies(
        [i for f, i in found if f == "consumed_wh"], "consumed_wh", CONSUMPTION_PREFERENCE
    )
    assert all(i.source == "envoy_meter" for i in consumed)
    assert [i.consumed_wh for i in consumed] == [100.0, 100.0, 100.0]


def test_the_enphase_providers_rank_sources_as_the_energy_model_prefers_them():
    from solar_pipeline.assets.provider import preference
    from solar_pipeline.assets.registry import PROVIDERS
    from solar_pipeline.energy.model import PRODUCTION_PREFERENCE

    both = [PROVIDERS["enphase"], PROVIDERS["envoy"]]
    assert preference(both, "produced_wh") == PRODUCTION_PREFERENCE
    assert preference(both, "imported_wh") == CONSUMPTION_PREFERENCE
