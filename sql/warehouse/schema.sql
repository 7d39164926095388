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
    source_file  VARCHAR NOT NULL,      -- lineage: file name as given to ingest (for people; not a key)
    source_row   BIGINT NOT NULL,       -- lineage: 1-based physical line number in that file (the header is line 1)
    run_id       VARCHAR NOT NULL,
    ingested_at  TIMESTAMP NOT NULL
);
-- Added after the first release (ALTER keeps older warehouses usable).
-- file_id: the landing file's identity, sha1 of its resolved path (ops.ingest_files.path); the lineage key.
ALTER TABLE raw.clicks ADD COLUMN IF NOT EXISTS file_id VARCHAR;
-- weight: the profile's weight of this event type (1.0 unless the profile says otherwise).
ALTER TABLE raw.clicks ADD COLUMN IF NOT EXISTS weight DOUBLE DEFAULT 1.0;

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
    raw_line       VARCHAR               -- a bounded excerpt of the line, for lines that could not be split into fields
);
ALTER TABLE quarantine.clicks ADD COLUMN IF NOT EXISTS file_id VARCHAR;  -- as raw.clicks.file_id

-- One row per ingested file per committed run (written in the commit transaction, so a killed or
-- refused run leaves none). The invariant, checked for every file against the physical line count:
-- read = accepted + quarantined + duplicates + filtered + other_days + blank.
CREATE TABLE IF NOT EXISTS ops.ingest_files (
    run_id        VARCHAR NOT NULL,
    source_file   VARCHAR NOT NULL,     -- file name, for people
    path          VARCHAR NOT NULL,     -- resolved path as read (symlinks resolved; see link_path)
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
ALTER TABLE ops.ingest_files ADD COLUMN IF NOT EXISTS file_id VARCHAR;        -- sha1 of path: the lineage key
ALTER TABLE ops.ingest_files ADD COLUMN IF NOT EXISTS link_path VARCHAR;      -- the symlink given, when path was reached through one
ALTER TABLE ops.ingest_files ADD COLUMN IF NOT EXISTS rows_filtered BIGINT DEFAULT 0;  -- event types outside the profile's keep-list
ALTER TABLE ops.ingest_files ADD COLUMN IF NOT EXISTS rows_blank BIGINT DEFAULT 0;     -- blank lines (no data; not quarantined)
ALTER TABLE ops.ingest_files ADD COLUMN IF NOT EXISTS flags VARCHAR;          -- guard rails passed ('; '-joined), NULL when none

-- One row per committed ingest run. committed: raw.clicks holds the run, its lake files may not all
-- be in place yet; published: the lake matches. Any run's commit first finishes every committed run.
CREATE TABLE IF NOT EXISTS ops.ingest_runs (
    run_id        VARCHAR NOT NULL,
    state         VARCHAR NOT NULL,     -- committed | published
    committed_at  TIMESTAMP NOT NULL,
    published_at  TIMESTAMP
);

-- The manifest of lake/clicks: every Parquet file the lake should hold (live), is about to hold
-- (pending: committed, waiting in staged_path to be renamed into place) or is about to lose (retired
-- by a later run). raw.clicks and the live files hold the same rows; a lost pending file is rebuilt
-- from raw.clicks (its run_id, file_id and event_date select exactly its rows).
CREATE TABLE IF NOT EXISTS ops.lake_files (
    rel_path      VARCHAR NOT NULL,     -- under lake/clicks: event_date=D/<name>.parquet
    run_id        VARCHAR NOT NULL,     -- the run that wrote it
    file_id       VARCHAR,              -- the landing file its rows came from
    event_date    DATE NOT NULL,
    state         VARCHAR NOT NULL,     -- pending | live | retired
    staged_path   VARCHAR,              -- where a pending file waits (the run's scratch folder)
    retired_by    VARCHAR               -- the run that replaces a retired file
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
