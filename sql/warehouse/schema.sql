-- Working database layout (clickrec.duckdb). Idempotent: run on every open.
-- Later layers add their own schema files (features, models, recs) next to this one.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE SCHEMA IF NOT EXISTS ops;
CREATE SCHEMA IF NOT EXISTS staging;

-- Canonical click events; the same rows live in lake/clicks/event_date=D/*.parquet.
CREATE TABLE IF NOT EXISTS raw.clicks (
    session_id   VARCHAR,               -- source session id; NULL when the source has none (derived from user_id later)
    user_id      VARCHAR,               -- logged-in user, NULL for anonymous sessions
    item_id      VARCHAR NOT NULL,      -- exact bytes of the source id
    event_type   VARCHAR NOT NULL,      -- 'click' unless the source says otherwise
    category     VARCHAR,               -- optional source category
    ts           TIMESTAMP NOT NULL,    -- UTC
    event_date   DATE NOT NULL,         -- CAST(ts AS DATE), the partition key
    source_file  VARCHAR NOT NULL,      -- lineage: file name as given to ingest
    source_row   BIGINT NOT NULL,       -- lineage: 1-based line number in that file (the header is line 1)
    run_id       VARCHAR NOT NULL,
    ingested_at  TIMESTAMP NOT NULL
);

-- Rows that failed a row-level check, with the raw values as read.
CREATE TABLE IF NOT EXISTS quarantine.clicks (
    source_file  VARCHAR NOT NULL,
    source_row   BIGINT NOT NULL,
    reason       VARCHAR NOT NULL,
    raw_session_id VARCHAR,
    raw_user_id    VARCHAR,
    raw_item_id    VARCHAR,
    raw_event_type VARCHAR,
    raw_category   VARCHAR,
    raw_ts         VARCHAR,
    run_id       VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL,
    raw_line       VARCHAR               -- the whole line, for lines that could not be split into fields
);

-- One row per ingested file per run: the accounting invariant read = accepted + quarantined + duplicates.
CREATE TABLE IF NOT EXISTS ops.ingest_files (
    run_id        VARCHAR NOT NULL,
    source_file   VARCHAR NOT NULL,     -- file name (the lineage key in raw.clicks)
    path          VARCHAR NOT NULL,     -- full path as read
    profile       VARCHAR NOT NULL,
    day           DATE,                 -- first day this run was restricted to (--date / backfill range), NULL for all
    day_to        DATE,                 -- last day of that range (= day for --date)
    sha256        VARCHAR NOT NULL,
    size_bytes    BIGINT NOT NULL,
    rows_read     BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    rows_duplicate   BIGINT NOT NULL,
    rows_other_days  BIGINT NOT NULL,   -- rows of days outside --date: left for their own day's run
    min_ts        TIMESTAMP,
    max_ts        TIMESTAMP,
    ingested_at   TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS ops.runs (
    run_id      VARCHAR PRIMARY KEY,
    kind        VARCHAR NOT NULL,       -- ingest | backfill | nightly
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status      VARCHAR NOT NULL,       -- running | ok | failed
    message     VARCHAR
);

-- One row per expectation per validated batch (written from Great Expectations results).
CREATE TABLE IF NOT EXISTS ops.validation_results (
    run_id        VARCHAR NOT NULL,
    batch         VARCHAR NOT NULL,     -- what was validated (file or day)
    expectation   VARCHAR NOT NULL,
    column_name   VARCHAR,
    level         VARCHAR NOT NULL,     -- row | table
    success       BOOLEAN NOT NULL,
    observed_value VARCHAR,
    unexpected_count BIGINT,
    element_count BIGINT,
    details       VARCHAR,
    validated_at  TIMESTAMP NOT NULL
);
