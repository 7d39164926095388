-- One staged file's part of the row-level asset: the check columns of its checked rows
-- (keep_checks.sql), as its one pass computed them; the quarantine router read the same columns.
INSERT INTO staging.run_rows
SELECT $file_index, null_session_id, null_user_id, null_item_id, null_event_type, null_category, null_ts,
       range_ts, regex_session_id, regex_user_id, regex_item_id, set_event_type
FROM scratch.staging.checks;
