CREATE SCHEMA IF NOT EXISTS enphase;

CREATE TABLE IF NOT EXISTS enphase.system_summary (
    raw_id BIGINT NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    system_id BIGINT NOT NULL,
    status VARCHAR,
    current_power_w INTEGER,
    energy_today_wh BIGINT,
    energy_lifetime_wh BIGINT,
    last_report_at TIMESTAMPTZ,
    last_interval_end_at TIMESTAMPTZ,
    summary_date DATE,
    source VARCHAR,
    size_w INTEGER,
    modules INTEGER
);

CREATE TABLE IF NOT EXISTS enphase.events (
    system_id BIGINT NOT NULL,
    event_type_id INTEGER NOT NULL,
    status VARCHAR NOT NULL,
    serial_number VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    raw_id BIGINT,
    PRIMARY KEY (system_id, event_type_id, serial_number, started_at)
);

CREATE TABLE IF NOT EXISTS enphase.alarms (
    system_id BIGINT NOT NULL,
    alarm_id VARCHAR NOT NULL PRIMARY KEY,
    severity INTEGER,
    event_type_id INTEGER,
    cleared BOOLEAN,
    started_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ,
    raw_id BIGINT,
    -- When open_alarms first no longer listed it: it cleared before then. ended_at is
    -- Enphase's own clear time, NULL until a window answer holds the cleared alarm.
    seen_cleared_at TIMESTAMPTZ
);
-- Databases created before seen_cleared_at existed.
ALTER TABLE enphase.alarms ADD COLUMN IF NOT EXISTS seen_cleared_at TIMESTAMPTZ;

-- Partition-replaced tables carry no primary key: delete-then-insert of the same key inside
-- one transaction is where DuckDB's index checks have historically been over-eager.
-- wh is NULL where the answer's value was unusable; flags says why (negative, spike,
-- duplicate_conflict) and raw_id points at the answer as sent.
CREATE TABLE IF NOT EXISTS enphase.production_intervals (
    system_id BIGINT NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL,
    wh INTEGER,
    devices_reporting INTEGER,
    powr_w INTEGER,
    raw_id BIGINT,
    flags VARCHAR
);

CREATE TABLE IF NOT EXISTS enphase.consumption_intervals (
    system_id BIGINT NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    wh INTEGER,
    devices_reporting INTEGER,
    raw_id BIGINT,
    flags VARCHAR
);

-- Warehouses created before the flags existed.
ALTER TABLE enphase.production_intervals ADD COLUMN IF NOT EXISTS flags VARCHAR;
ALTER TABLE enphase.consumption_intervals ADD COLUMN IF NOT EXISTS flags VARCHAR;

CREATE TABLE IF NOT EXISTS enphase.daily_energy (
    day DATE NOT NULL,
    system_id BIGINT NOT NULL,
    produced_wh BIGINT,
    micro_wh BIGINT,
    meter_wh BIGINT,
    raw_id BIGINT
);
