-- One Parquet file this run will place in the lake (pending until renamed into place).
INSERT INTO ops.lake_files (rel_path, run_id, file_id, event_date, state, staged_path, retired_by)
VALUES ($rel_path, $run_id, $file_id, $event_date, 'pending', $staged_path, NULL);
