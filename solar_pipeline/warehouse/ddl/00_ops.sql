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

-- Per site and asset: the last attempt, the last success and the last error, so a failing site
-- is visible (and does not fail the others).
CREATE TABLE IF NOT EXISTS ops.site_status (
    site_id VARCHAR NOT NULL,
    vendor VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    last_attempt_at TIMESTAMPTZ NOT NULL,
    last_success_at TIMESTAMPTZ,
    last_error VARCHAR,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    run_id VARCHAR,
    PRIMARY KEY (site_id, asset)
);
