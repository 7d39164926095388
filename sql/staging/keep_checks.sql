-- The check columns of the file's checked rows (kept, not a duplicate), as its one pass computed
-- them: what GX validates (run_rows_add.sql); the quarantine router reads the same columns.
CREATE TABLE scratch.staging.checks AS
SELECT b.null_session_id, b.null_user_id, b.null_item_id, b.null_event_type, b.null_category, b.null_ts,
       b.range_ts, b.regex_session_id, b.regex_user_id, b.regex_item_id, b.set_event_type
FROM staging.batch AS b
ANTI JOIN staging.duplicates AS d USING (source_row)
WHERE b.line_reason IS NULL AND NOT b.is_filtered;
