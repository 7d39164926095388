-- Run $run_id's placed files are live; their staged copies are gone.
UPDATE ops.lake_files SET state = 'live', staged_path = NULL WHERE run_id = $run_id AND state = 'pending';
