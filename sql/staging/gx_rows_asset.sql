-- What the row-level GX suite validates: the check columns of every checked row of the run's files
-- (run_rows_add.sql). GX counts each column's failures over the run; the sum of the files' router
-- counts must equal it.
SELECT null_session_id, null_user_id, null_item_id, null_event_type, null_category, null_ts,
       range_ts, regex_session_id, regex_user_id, regex_item_id, set_event_type
FROM staging.run_rows
