UPDATE ops.lake_files SET state = 'live', staged_path = NULL WHERE run_id = $run_id AND state = 'pending';
