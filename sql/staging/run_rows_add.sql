-- One staged file's part of the row-level asset: the check columns of every checked row (kept, not
-- a duplicate), as its one pass computed them; the quarantine router reads the same columns.
INSERT INTO staging.run_rows
SELECT $file_index, b.null_session_id, b.null_user_id, b.null_item_id, b.null_event_type, b.null_category,
       b.null_ts, b.range_ts, b.regex_session_id, b.regex_user_id, b.regex_item_id, b.set_event_type
FROM scratch.staging.batch AS b
ANTI JOIN scratch.staging.duplicates AS d USING (source_row)
WHERE b.line_reason IS NULL AND NOT b.is_filtered;
