-- Rejected rows into quarantine with their raw text. A retry of the same run, or a re-ingest of the
-- same file, replaces the earlier entry, so quarantine holds each bad (file, row) once.
DELETE FROM quarantine.clicks q
WHERE (q.run_id = $run_id AND q.source_file IN (SELECT DISTINCT source_file FROM staging.batch))
   OR EXISTS (SELECT 1 FROM staging.rejects r WHERE r.source_file = q.source_file AND r.source_row = q.source_row);
INSERT INTO quarantine.clicks BY NAME
SELECT source_file, source_row, reason,
       raw_session_id, raw_user_id, raw_item_id, raw_event_type, raw_category, raw_ts,
       $run_id AS run_id, $quarantined_at::TIMESTAMP AS quarantined_at
FROM staging.rejects;
