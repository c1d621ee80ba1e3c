CREATE SCHEMA IF NOT EXISTS ops;

-- Every HTTP request to a metered API (data, token, throttled, failed): the budget's memory.
CREATE TABLE IF NOT EXISTS ops.api_requests (
    requested_at TIMESTAMPTZ NOT NULL,
    api VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    status INTEGER,
    duration_ms DOUBLE,
    error VARCHAR,
    run_id VARCHAR
);

-- How far each incremental parser has read its raw table.
CREATE TABLE IF NOT EXISTS ops.parse_watermarks (
    consumer VARCHAR PRIMARY KEY,
    last_raw_id BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
