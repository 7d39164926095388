-- The run's validation database: what GX validates once for all of a run's staged files. Each
-- table has one part per file (file_index: the file's place in the run), copied from its scratch.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE TABLE staging.run_rows (
    file_index INTEGER,
    null_session_id BOOLEAN, null_user_id BOOLEAN, null_item_id BOOLEAN, null_event_type BOOLEAN,
    null_category BOOLEAN, null_ts BOOLEAN, range_ts BOOLEAN, regex_session_id BOOLEAN,
    regex_user_id BOOLEAN, regex_item_id BOOLEAN, set_event_type BOOLEAN
);
CREATE OR REPLACE TABLE staging.run_batches (file_index INTEGER, kept BIGINT, duplicate_rate DOUBLE);
CREATE OR REPLACE TABLE staging.validate_days (file_index INTEGER, event_date DATE, row_count BIGINT);
