-- The row-level asset of the run: every file's check columns of its checked rows (run_rows_add.sql).
CREATE OR REPLACE TABLE staging.run_rows (
    file_index INTEGER,
    null_session_id BOOLEAN, null_user_id BOOLEAN, null_item_id BOOLEAN, null_event_type BOOLEAN,
    null_category BOOLEAN, null_ts BOOLEAN, range_ts BOOLEAN, regex_session_id BOOLEAN,
    regex_user_id BOOLEAN, regex_item_id BOOLEAN, set_event_type BOOLEAN
);
