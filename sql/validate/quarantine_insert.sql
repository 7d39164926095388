-- Rejected rows into quarantine with their raw text as read and the first failing check.
INSERT INTO quarantine.clicks BY NAME
SELECT source_file, source_row, reason,
       raw_session_id, raw_user_id, raw_item_id, raw_event_type, raw_category, raw_ts,
       $run_id AS run_id, $quarantined_at::TIMESTAMP AS quarantined_at
FROM staging.rejects;
