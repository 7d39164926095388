-- What the row-level GX suite validates: the check columns of every checked row (kept, not a
-- duplicate), as the one pass computed them. GX counts each column's failures; the quarantine
-- router reads the same columns.
SELECT b.null_session_id, b.null_user_id, b.null_item_id, b.null_event_type, b.null_category, b.null_ts,
       b.range_ts, b.regex_session_id, b.regex_user_id, b.regex_item_id, b.set_event_type
FROM staging.batch AS b
ANTI JOIN staging.duplicates AS d USING (source_row)
WHERE b.line_reason IS NULL AND NOT b.is_filtered
