"""A do-nothing Dagster job: the yardstick a scheduled run's cost is divided by."""

import dagster as dg


@dg.op
def nothing() -> None:
    """Does no work, so its run costs only Dagster's own start-up, events and exit."""


@dg.job(executor_def=dg.in_process_executor)
def noop_job() -> None:
    nothing()


defs = dg.Definitions(jobs=[noop_job])
