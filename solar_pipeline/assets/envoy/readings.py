import json

import dagster as dg
import pandas as pd

from solar_pipeline.assets.envoy.ingest import ingest
from solar_pipeline.constants import (
    DUCKDB_POOL,
    ENVOY_GROUP,
    ENVOY_INVERTER_READINGS,
    ENVOY_METER_READINGS,
    ENVOY_PRODUCTION_READINGS,
    RAW_ENVOY_RESPONSES,
)
from solar_pipeline.resources import DuckDBWarehouse
from solar_pipeline.settings import EnvoySettings
from solar_pipeline.sources.envoy.tags import load_inverter_tags

WELL_FORMED_CHECK = "raw_answers_well_formed"

KINDS = {
    "production": ENVOY_PRODUCTION_READINGS,
    "inverters": ENVOY_INVERTER_READINGS,
    "meters": ENVOY_METER_READINGS,
}


class EnvoyParseConfig(dg.Config):
    full_reparse: bool = False
    """Drop the envoy.* readings and parse the whole raw table again (after a parser fix)."""


def _spec(key: dg.AssetKey, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        deps=[RAW_ENVOY_RESPONSES],
        description=description,
        group_name=ENVOY_GROUP,
        kinds={"duckdb"},
    )


@dg.multi_asset(
    name="envoy_readings",
    specs=[
        _spec(
            ENVOY_PRODUCTION_READINGS,
            "Production and consumption readings of the gateway: one row per reading and "
            "measurement (production, total-consumption, net-consumption), source (`eim` CT "
            "meter or `inverters`) and phase (NULL = whole system). `reading_at` is the "
            "gateway's readingTime (the fetch time when it has none). Only real data: a CT with "
            "activeCount 0 gives no row.",
        ),
        _spec(
            ENVOY_INVERTER_READINGS,
            "One row per microinverter report, unique on (serial_number, last_report_at): the "
            "gateway repeats a report for 5-15 minutes and it is stored once. From "
            "/ivp/pdm/device_data where available (with DC/AC voltage and current, temperature "
            "and the period's energy), else /api/v1/production/inverters.",
        ),
        _spec(
            ENVOY_METER_READINGS,
            "CT meter readings per meter and phase, /ivp/meters joined to /ivp/meters/readings "
            "by eid: power, lifetime energy delivered and received (the counters daily energy "
            "is computed from), voltage, current, frequency, power factor.",
        ),
    ],
    check_specs=[dg.AssetCheckSpec(WELL_FORMED_CHECK, asset=key) for key in KINDS.values()],
    pool=DUCKDB_POOL,
)
def envoy_readings(
    context: dg.AssetExecutionContext, config: EnvoyParseConfig, warehouse: DuckDBWarehouse
):
    """Parses the raw gateway answers newer than the last parsed one into the envoy.* tables."""
    tags_path = EnvoySettings.from_env().inverter_tags
    tags = load_inverter_tags(tags_path) if tags_path else None
    with warehouse.connect() as conn:
        stats = ingest(conn, full=config.full_reparse)
        if tags is not None:
            conn.execute("BEGIN TRANSACTION")
            conn.execute("DELETE FROM envoy.inverter_tags")
            if tags:
                conn.register(
                    "_tags",
                    pd.DataFrame(
                        [{"serial_number": s, "tags": json.dumps(t)} for s, t in tags.items()]
                    ),
                )
                conn.execute("INSERT INTO envoy.inverter_tags SELECT * FROM _tags")
            conn.execute("COMMIT")
    context.log.info(
        f"Parsed {stats.raw_rows} raw answers from {stats.polls} polls: "
        f"{dict(stats.written)} new rows, malformed {dict(stats.malformed) or 0}"
    )
    for kind, key in KINDS.items():
        bad = stats.malformed[kind]
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "rows_written": stats.written[kind],
                "polls_parsed": stats.polls,
                "raw_answers_parsed": stats.raw_rows,
                "error_answers": stats.error_answers,
                "malformed_answers": bad,
                "full_reparse": config.full_reparse,
            },
            check_results=[
                dg.AssetCheckResult(
                    asset_key=key,
                    check_name=WELL_FORMED_CHECK,
                    passed=bad == 0,
                    metadata={
                        "malformed_answers": bad,
                        "malformed_raw_ids": dg.MetadataValue.json(
                            stats.malformed_ids.get(kind, [])
                        ),
                    },
                    description=(
                        f"{bad} gateway answers could not be parsed; their text is kept in "
                        "raw.envoy_responses, with the reason in parse_error"
                        if bad
                        else None
                    ),
                )
            ],
        )
