CREATE SCHEMA IF NOT EXISTS raw;

CREATE SEQUENCE IF NOT EXISTS raw.enphase_responses_id;

-- Enphase cloud answers verbatim, written before anything parses them; parse_error marks an
-- answer a typed asset could not read.
CREATE TABLE IF NOT EXISTS raw.enphase_responses (
    id BIGINT DEFAULT nextval('raw.enphase_responses_id') PRIMARY KEY,
    fetched_at TIMESTAMPTZ NOT NULL,
    system_id BIGINT NOT NULL,
    endpoint VARCHAR NOT NULL,
    query VARCHAR NOT NULL,
    status INTEGER,
    content_type VARCHAR,
    body VARCHAR,
    elapsed_ms DOUBLE,
    error VARCHAR,
    valid_json BOOLEAN NOT NULL,
    covers_start TIMESTAMPTZ,
    covers_end TIMESTAMPTZ,
    run_id VARCHAR,
    parse_error VARCHAR
);
-- Databases created before parse_error existed.
ALTER TABLE raw.enphase_responses ADD COLUMN IF NOT EXISTS parse_error VARCHAR;
