CREATE SEQUENCE IF NOT EXISTS raw.envoy_responses_id;

-- Every gateway answer verbatim (also HTML, errors and invalid JSON), and polls that got no
-- answer at all (`error` set, no status). Written before anything parses it; parse_error marks
-- an answer the readings asset could not read.
CREATE TABLE IF NOT EXISTS raw.envoy_responses (
    id BIGINT DEFAULT nextval('raw.envoy_responses_id') PRIMARY KEY,
    fetched_at TIMESTAMPTZ NOT NULL,
    envoy_serial VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    http_status INTEGER,
    elapsed_ms DOUBLE,
    error VARCHAR,
    content_type VARCHAR,
    body VARCHAR,
    firmware VARCHAR,
    poll_id VARCHAR NOT NULL,
    run_id VARCHAR,
    parse_error VARCHAR
);
-- Databases created before parse_error existed.
ALTER TABLE raw.envoy_responses ADD COLUMN IF NOT EXISTS parse_error VARCHAR;

CREATE SCHEMA IF NOT EXISTS envoy;

CREATE TABLE IF NOT EXISTS envoy.production_readings (
    reading_at TIMESTAMPTZ NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    envoy_serial VARCHAR NOT NULL,
    measurement VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    phase VARCHAR,
    w_now DOUBLE,
    wh_lifetime DOUBLE,
    wh_today DOUBLE,
    active_count INTEGER,
    raw_id BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS envoy.inverter_readings (
    serial_number VARCHAR NOT NULL,
    last_report_at TIMESTAMPTZ NOT NULL,
    watts INTEGER,
    max_watts INTEGER,
    dev_type INTEGER,
    envoy_serial VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    dc_voltage_v DOUBLE,
    dc_current_a DOUBLE,
    ac_voltage_v DOUBLE,
    ac_frequency_hz DOUBLE,
    temperature_c DOUBLE,
    energy_wh DOUBLE,
    duration_s DOUBLE,
    raw_id BIGINT NOT NULL,
    PRIMARY KEY (serial_number, last_report_at)
);

CREATE TABLE IF NOT EXISTS envoy.meter_readings (
    reading_at TIMESTAMPTZ NOT NULL,
    envoy_serial VARCHAR NOT NULL,
    eid BIGINT NOT NULL,
    measurement_type VARCHAR,
    state VARCHAR,
    phase_mode VARCHAR,
    phase VARCHAR,
    active_power DOUBLE,
    energy_delivered DOUBLE,
    energy_received DOUBLE,
    apparent_power DOUBLE,
    reactive_power DOUBLE,
    voltage DOUBLE,
    current DOUBLE,
    frequency DOUBLE,
    power_factor DOUBLE,
    raw_id BIGINT NOT NULL
);

-- Labels from ENVOY_INVERTER_TAGS (array, face, row, col ...), refreshed on every parse.
CREATE TABLE IF NOT EXISTS envoy.inverter_tags (
    serial_number VARCHAR PRIMARY KEY,
    tags VARCHAR NOT NULL
);
