-- The live lake files holding the rows commit_run.sql just deleted (same scope) are retired by this
-- run: removed from the lake once its own files are in place.
UPDATE ops.lake_files
SET state = 'retired', retired_by = $run_id
WHERE state = 'live'
  AND CASE WHEN $day_from IS NOT NULL THEN event_date BETWEEN $day_from AND $day_to
           ELSE list_contains($file_ids, file_id) END;
