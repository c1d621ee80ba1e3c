"""One failing site is recorded and leaves the others alone; every site failing fails the step."""

import dagster as dg

from solar_pipeline.assets.sites import each_site, site_metadata
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.sites import Site
from solar_pipeline_tests.helpers import query

SITES = [
    Site("home", "enphase", "Europe/Amsterdam"),
    Site("barn", "solaredge", "America/Denver"),
    Site("cabin", "fronius", "Australia/Sydney"),
]


def make_asset(failing: set[str]):
    @dg.asset(key=["test", "per_site"])
    def per_site(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse
    ) -> dg.MaterializeResult:
        def work(site: Site) -> int:
            if site.site_id in failing:
                raise PermissionError(f"the API key of {site.site_id} was refused: set it again")
            return len(site.site_id)

        outcomes = each_site(context, warehouse, SITES, work)
        return dg.MaterializeResult(metadata=site_metadata(outcomes))

    return per_site


def status(warehouse) -> dict[str, tuple]:
    rows = query(
        warehouse,
        "SELECT site_id, last_success_at IS NOT NULL, last_error, consecutive_failures "
        "FROM ops.site_status WHERE asset = 'test/per_site'",
    )
    return {r[0]: r[1:] for r in rows}


def test_a_failing_site_is_recorded_and_the_others_succeed(warehouse):
    result = dg.materialize([make_asset({"barn"})], resources={"warehouse": warehouse})
    assert result.success
    meta = result.asset_materializations_for_node("test__per_site")[0].metadata
    assert meta["sites_ok"].value == 2
    assert "was refused" in meta["sites_failed"].value["barn"]
    got = status(warehouse)
    assert got["home"] == (True, None, 0) and got["cabin"] == (True, None, 0)
    assert got["barn"][0] is False and "PermissionError" in got["barn"][1]

    # Failing again counts up and keeps no success; recovering clears the error.
    dg.materialize([make_asset({"barn"})], resources={"warehouse": warehouse})
    assert status(warehouse)["barn"][2] == 2
    dg.materialize([make_asset(set())], resources={"warehouse": warehouse})
    assert status(warehouse)["barn"] == (True, None, 0)

    # A later failure keeps the last success.
    dg.materialize([make_asset({"home"})], resources={"warehouse": warehouse})
    succeeded, error, failures = status(warehouse)["home"]
    assert succeeded and "PermissionError" in error and failures == 1


def test_every_site_failing_fails_the_step(warehouse):
    result = dg.materialize(
        [make_asset({"home", "barn", "cabin"})],
        resources={"warehouse": warehouse},
        raise_on_error=False,
    )
    assert not result.success
    assert "every site failed (3)" in str(result.get_step_failure_events()[0].event_specific_data)
    assert {k: v[2] for k, v in status(warehouse).items()} == {"home": 1, "barn": 1, "cabin": 1}
