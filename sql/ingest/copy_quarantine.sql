-- A row quarantined again (re-ingest, or another day's run over the same file) replaces its old
-- entry, so quarantine holds each bad (file, line) once. Followed by copy_scratch_rows.sql.
DELETE FROM quarantine.clicks
WHERE source_file = $source_file
  AND source_row IN (SELECT source_row FROM scratch.quarantine.clicks);
