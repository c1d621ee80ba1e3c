import dagster as dg

from solar_pipeline.constants import DUCKDB_POOL, ENERGY_DAILY, ENERGY_GROUP, ENERGY_MONTHLY
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.warehouse.db import one_row


@dg.asset(
    key=ENERGY_MONTHLY,
    deps=[ENERGY_DAILY],
    pool=DUCKDB_POOL,
    group_name=ENERGY_GROUP,
    kinds={"duckdb"},
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def monthly_energy(warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """energy.daily_energy summed per calendar month, for dashboards (`days` and
    `complete_days` say how much of the month the figures rest on)."""
    with warehouse.connect() as conn:
        conn.execute("BEGIN TRANSACTION")
        conn.execute("DELETE FROM energy.monthly_energy")
        conn.execute(
            """
            INSERT INTO energy.monthly_energy
            SELECT site_id, date_trunc('month', day)::DATE, sum(produced_wh), sum(consumed_wh),
                   sum(imported_wh), sum(exported_wh), sum(self_consumed_wh), max(peak_w),
                   count(*), count(*) FILTER (WHERE status = 'complete')
            FROM energy.daily_energy GROUP BY ALL
            """
        ).fetchall()
        conn.execute("COMMIT")
        months = one_row(conn, "SELECT count(*) FROM energy.monthly_energy")[0]
    return dg.MaterializeResult(metadata={"dagster/row_count": months})
