"""Purging old runs of the high-frequency jobs from the Dagster instance.

Dagster's `retention:` setting covers schedule and sensor ticks only; runs and their event logs
are kept forever. The Envoy poll and the cloud tick each start up to 144 runs a day, so after a
year the run list and the event log hold ~100,000 runs. This job deletes finished runs of those
two jobs once they are older than SOLAR_RUN_RETENTION_DAYS (default 30). Days stay complete in
the UI: the nightly completion runs, backfills and energy rebuilds are kept, and the DuckDB
tables never depend on the run history.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from solar_pipeline.settings import days_setting

HIGH_FREQUENCY_JOBS = ("envoy_job", "enphase_cloud_job")
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
BATCH = 500


def retention_days() -> int:
    return days_setting("SOLAR_RUN_RETENTION_DAYS", 30, minimum=1)


class RunRetentionConfig(dg.Config):
    keep_days: int | None = None
    """Keep runs younger than this (default: SOLAR_RUN_RETENTION_DAYS, else 30)."""


@dg.op
def purge_old_runs(context: dg.OpExecutionContext, config: RunRetentionConfig) -> int:
    """Delete finished runs of the high-frequency jobs older than the retention period."""
    keep = config.keep_days or retention_days()
    cutoff = datetime.now(UTC) - timedelta(days=keep)
    deleted = 0
    for job in HIGH_FREQUENCY_JOBS:
        while True:
            records = context.instance.get_run_records(
                filters=dg.RunsFilter(job_name=job, statuses=FINISHED, created_before=cutoff),
                limit=BATCH,
            )
            for record in records:
                context.instance.delete_run(record.dagster_run.run_id)
            deleted += len(records)
            if len(records) < BATCH:
                break
    context.log.info(
        f"Deleted {deleted} runs of {', '.join(HIGH_FREQUENCY_JOBS)} older than {keep} days"
    )
    return deleted


@dg.job(description="Delete old runs of the 10-minute jobs (SOLAR_RUN_RETENTION_DAYS).")
def run_retention_job() -> None:
    purge_old_runs()
