"""Running an asset's work once per site, so that one site's failure (wrong credentials, an
unreachable gateway) is recorded in ops.site_status and does not fail the others."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import dagster as dg

from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.sites import Site
from solar_pipeline.warehouse.site_status import record_site_status

T = TypeVar("T")


@dataclass(frozen=True)
class SiteOutcome(Generic[T]):
    site: Site
    result: T | None
    error: str | None


def each_site(
    context: dg.AssetExecutionContext,
    warehouse: DuckDBWarehouse,
    sites: list[Site],
    work: Callable[[Site], T],
    fail_if_all_fail: bool = True,
) -> list[SiteOutcome[T]]:
    """`work(site)` for every site; each outcome is recorded per site and asset. The step fails
    only when every site failed (then nothing was made, and the run must say so), unless
    `fail_if_all_fail` is off: a vendor's fetch, whose failure would otherwise skip the energy
    steps of every other vendor's sites in the same run, reports through a check instead."""
    asset = context.asset_key.to_user_string()
    outcomes: list[SiteOutcome[T]] = []
    for site in sites:
        try:
            outcome = SiteOutcome(site, work(site), None)
        except Exception as exc:  # one site's failure must not stop the others
            # Our errors name what to fix and never carry a secret (see the secrets tests).
            error = f"{type(exc).__name__}: {exc}"
            context.log.error(f"site {site.site_id} ({site.vendor}) failed: {error}")
            outcome = SiteOutcome(site, None, error)
        with warehouse.connect() as conn:
            record_site_status(
                conn, site.site_id, site.vendor, asset, outcome.error, context.run_id
            )
        outcomes.append(outcome)
    failed = [o for o in outcomes if o.error]
    if fail_if_all_fail and outcomes and len(failed) == len(outcomes):
        raise dg.Failure(
            description=f"every site failed ({len(failed)}); see ops.site_status",
            metadata={o.site.site_id: o.error or "" for o in failed},
        )
    return outcomes


def site_metadata(outcomes: list[SiteOutcome]) -> dict[str, Any]:
    """Per-site outcome for the materialization's metadata."""
    return {
        "sites_ok": sum(1 for o in outcomes if o.error is None),
        "sites_failed": dg.MetadataValue.json(
            {o.site.site_id: o.error for o in outcomes if o.error}
        ),
    }


def sites_check(name: str, outcomes: list[SiteOutcome]) -> dg.AssetCheckResult:
    """Failed unless every site's work succeeded; the errors name what to fix."""
    failed = {o.site.site_id: o.error for o in outcomes if o.error}
    return dg.AssetCheckResult(
        check_name=name,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="every site answered (see ops.site_status for the history)",
        metadata={"failed_sites": dg.MetadataValue.json(failed)},
    )
