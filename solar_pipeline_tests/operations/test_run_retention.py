"""The run purge: old finished runs of the 10-minute jobs go, everything else stays."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.storage.runs.schema import RunsTable
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage

from solar_pipeline.run_retention import retention_days, run_retention_job
from solar_pipeline.settings import InvalidSettingError


def add_run(instance: dg.DagsterInstance, job: str, status, age_days: float) -> str:
    run = instance.add_run(dg.DagsterRun(job_name=job, status=status))
    # Runs are stamped "now" when stored; age them the way time would.
    created = datetime.now(UTC) - timedelta(days=age_days)
    storage = instance.run_storage
    assert isinstance(storage, SqlRunStorage)
    with storage.connect() as conn:
        conn.execute(
            sa.update(RunsTable)
            .where(RunsTable.c.run_id == run.run_id)
            .values(create_timestamp=created.replace(tzinfo=None))
        )
    return run.run_id


def test_purges_only_old_finished_runs_of_the_frequent_jobs():
    ok, failed, started = (
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.STARTED,
    )
    with dg.instance_for_test() as instance:
        purged = [
            add_run(instance, "envoy_job", ok, 40),
            add_run(instance, "envoy_job", failed, 31),
            add_run(instance, "enphase_cloud_job", ok, 45),
        ]
        kept = [
            add_run(instance, "envoy_job", ok, 5),
            add_run(instance, "envoy_job", started, 40),  # still running: never touched
            add_run(instance, "enphase_daily_job", ok, 400),
            add_run(instance, "energy_job", ok, 90),
        ]
        result = run_retention_job.execute_in_process(
            instance=instance, run_config={"ops": {"purge_old_runs": {"config": {"keep_days": 30}}}}
        )
        assert result.success and result.output_for_node("purge_old_runs") == len(purged)
        remaining = {r.run_id for r in instance.get_runs()}
        assert not remaining & set(purged)
        assert set(kept) <= remaining


def test_retention_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("SOLAR_RUN_RETENTION_DAYS", "a month")
    with pytest.raises(InvalidSettingError, match="SOLAR_RUN_RETENTION_DAYS"):
        retention_days()
    monkeypatch.setenv("SOLAR_RUN_RETENTION_DAYS", "14")
    assert retention_days() == 14
