CREATE SCHEMA IF NOT EXISTS energy;

-- Every source's energy per interval, vendor-neutral; NULL where a source does not measure a
-- figure or an anomaly (see flags) made the interval unusable.
CREATE TABLE IF NOT EXISTS energy.intervals (
    site_id VARCHAR NOT NULL,
    start_at TIMESTAMPTZ NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    produced_wh DOUBLE,
    consumed_wh DOUBLE,
    imported_wh DOUBLE,
    exported_wh DOUBLE,
    source VARCHAR NOT NULL,
    flags VARCHAR
);

CREATE TABLE IF NOT EXISTS energy.daily_energy (
    site_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    produced_wh DOUBLE,
    consumed_wh DOUBLE,
    imported_wh DOUBLE,
    exported_wh DOUBLE,
    self_consumed_wh DOUBLE,
    peak_w DOUBLE,
    produced_source VARCHAR,
    consumed_source VARCHAR,
    coverage DOUBLE,
    status VARCHAR NOT NULL,
    consumed_coverage DOUBLE,
    consumed_status VARCHAR,
    produced_disagreement_pct DOUBLE,
    produced_by_source VARCHAR,
    anomalies INTEGER
);

CREATE TABLE IF NOT EXISTS energy.daily_inverter_energy (
    site_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    serial_number VARCHAR NOT NULL,
    wh DOUBLE NOT NULL,
    reports INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS energy.monthly_energy (
    site_id VARCHAR NOT NULL,
    month DATE NOT NULL,
    produced_wh DOUBLE,
    consumed_wh DOUBLE,
    imported_wh DOUBLE,
    exported_wh DOUBLE,
    self_consumed_wh DOUBLE,
    peak_w DOUBLE,
    days INTEGER NOT NULL,
    complete_days INTEGER NOT NULL
);
