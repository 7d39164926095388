-- A lake file written before the manifest existed: live, of no known landing file.
INSERT INTO ops.lake_files (rel_path, run_id, file_id, event_date, state, staged_path, retired_by)
VALUES ($rel_path, 'legacy', NULL, $event_date, 'live', NULL, NULL);
