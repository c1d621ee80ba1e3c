import time
from typing import Any

import dagster as dg
import duckdb

from solar_pipeline.checks import ENVOY_POLICY
from solar_pipeline.constants import ENVOY_GROUP, RAW_ENVOY_RESPONSES
from solar_pipeline.resources import DuckDBWarehouse, EnvoyResource
from solar_pipeline.sources.envoy.poll import poll_once
from solar_pipeline.warehouse.envoy_raw import EnvoyRawWriter

REACHABLE_CHECK = "gateway_answered"
TOKEN_CHECK = "envoy_token_not_expiring"
# Owner tokens last a year; a week's warning leaves time to create a new one by hand.
TOKEN_WARN_DAYS = 7


def _flush(context: dg.AssetExecutionContext, writer: EnvoyRawWriter, last: bool) -> None:
    """Store the sealed polls. Between polls a busy database only delays them (they are
    retried at the next poll); at the end of the run a failure is an error."""
    try:
        writer.flush()
    except duckdb.IOException as exc:
        if last:
            raise
        context.log.warning(
            f"DuckDB busy ({exc}); {writer.waiting} answers kept for the next poll's write"
        )


class EnvoyPollConfig(dg.Config):
    polls: int = 1
    """How many polls this run makes (the schedule groups a few minutes of polls in one run)."""
    interval_s: float = 60.0
    """Seconds between the starts of consecutive polls."""


@dg.asset(
    key=RAW_ENVOY_RESPONSES,
    group_name=ENVOY_GROUP,
    kinds={"duckdb", "python"},
    freshness_policy=ENVOY_POLICY,
    check_specs=[
        dg.AssetCheckSpec(REACHABLE_CHECK, asset=RAW_ENVOY_RESPONSES),
        dg.AssetCheckSpec(TOKEN_CHECK, asset=RAW_ENVOY_RESPONSES),
    ],
    # Not in the DuckDB pool: a multi-poll run sleeps between polls and writes each poll in one
    # short transaction (retrying while another writer holds the file).
)
def envoy_responses(
    context: dg.AssetExecutionContext,
    config: EnvoyPollConfig,
    envoy: EnvoyResource,
    warehouse: DuckDBWarehouse,
) -> dg.MaterializeResult:
    """Every answer of the local Envoy / IQ Gateway, verbatim, one row per request.

    Each poll reads /info, then production (/production.json?details=1, or /api/v1/production
    where that is not JSON), per-inverter data (/ivp/pdm/device_data on 8.2+ firmware, the v1
    inverter list otherwise or beyond 50 devices) and, on metered gateways, the CT meters. The
    body is kept as text whatever it is (HTML, invalid JSON, errors), with the HTTP status, the
    time taken, and the transport error when there was no answer: the gateway's nightly reset
    around 23:00 is recorded, and does not fail the run.
    """
    writer = EnvoyRawWriter(warehouse.path, context.run_id)
    client = envoy.client(writer.add)
    started = time.monotonic()
    polls = answered = 0
    info = None
    errors: list[str] = []
    for n in range(max(config.polls, 1)):
        slot = started + n * config.interval_s
        if n and config.interval_s > 0 and time.monotonic() > slot + config.interval_s / 2:
            continue  # a slow poll ate this slot: skip it rather than bunch polls together
        time.sleep(max(0.0, slot - time.monotonic()))
        try:
            result = poll_once(client)
        finally:
            # Whatever happened, what was received is kept.
            serial = (client.info.serial if client.info else None) or envoy.serial or "unknown"
            writer.end_poll(serial, client.info.firmware if client.info else None)
            _flush(context, writer, last=n == max(config.polls, 1) - 1)
        polls += 1
        info = result.info or info
        if result.ok:
            answered += 1
        else:
            errors.append(result.error or "")
            context.log.warning(f"Envoy poll {n + 1} incomplete: {result.error}")
    token = client.tokens.current
    days_left = token.days_left(time.time()) if token is not None else None
    metadata: dict[str, Any] = {
        "polls": polls,
        "polls_answered": answered,
        "responses_stored": writer.written,
        "envoy_serial": info.serial if info else "",
        "firmware": info.firmware if info else "",
        "auth": ("jwt" if info and info.version[:1] >= (7,) else "digest") if info else "",
        "certificate_pin": client.pin_origin or ("none (http)" if not client.https else ""),
    }
    if token is not None and days_left is not None:
        metadata["envoy_token_expires_in_days"] = days_left
        metadata["envoy_token_origin"] = token.origin
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=REACHABLE_CHECK,
                passed=answered == polls,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"polls": polls, "polls_unanswered": polls - answered},
                description="; ".join(errors)[:500] or None,
            ),
            dg.AssetCheckResult(
                check_name=TOKEN_CHECK,
                # Digest firmware and tokens without an expiry have nothing to expire.
                passed=days_left is None or days_left > TOKEN_WARN_DAYS,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "envoy_token_expires_in_days": days_left if days_left is not None else -1.0
                },
                description=(
                    f"The gateway token expires in {days_left} days: create a new owner token "
                    "(ENVOY_TOKEN) or let the pipeline renew it (ENLIGHTEN_USERNAME/PASSWORD)"
                    if days_left is not None and days_left <= TOKEN_WARN_DAYS
                    else None
                ),
            ),
        ],
    )
