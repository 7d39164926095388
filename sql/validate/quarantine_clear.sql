-- Before quarantine_insert.sql: a retry of the same run, or a re-ingest of the same file, replaces
-- the earlier entry, so quarantine holds each bad (file, row) once.
DELETE FROM quarantine.clicks q
WHERE (q.run_id = $run_id AND q.source_file IN (SELECT DISTINCT source_file FROM staging.batch))
   OR EXISTS (SELECT 1 FROM staging.rejects r WHERE r.source_file = q.source_file AND r.source_row = q.source_row);
