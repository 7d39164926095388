-- What publishing run $run_id has to do: its pending files to place, the files it retires to remove.
SELECT rel_path, state, staged_path, file_id, event_date
FROM ops.lake_files
WHERE (run_id = $run_id AND state = 'pending') OR (retired_by = $run_id AND state = 'retired')
ORDER BY rel_path;
