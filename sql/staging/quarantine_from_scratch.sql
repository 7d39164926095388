-- One file's quarantine (keep_quarantine.sql), carried from its scratch database (attached as
-- `scratch`) into the working database.
INSERT INTO quarantine.clicks BY NAME
SELECT $source_file AS source_file, q.source_row, q.reason,
       q.raw_session_id, q.raw_user_id, q.raw_item_id, q.raw_event_type, q.raw_category, q.raw_ts,
       $run_id AS run_id, $quarantined_at::TIMESTAMP AS quarantined_at, q.raw_line, $file_id AS file_id
FROM scratch.staging.quarantine AS q;
