-- The Parquet files this run will place in the lake for one landing file (pending until renamed
-- into place): one statement for all its day partitions, so a file spanning many days costs one
-- insert, not one per day. The lists are parallel: $rel_paths[i] holds day $event_dates[i].
INSERT INTO ops.lake_files (rel_path, run_id, file_id, event_date, state, staged_path, retired_by)
SELECT rel_path, $run_id, $file_id, CAST(event_date AS DATE), 'pending', staged_path, NULL
FROM (SELECT unnest(CAST($rel_paths AS VARCHAR[])) AS rel_path,
             unnest(CAST($event_dates AS VARCHAR[])) AS event_date,
             unnest(CAST($staged_paths AS VARCHAR[])) AS staged_path);
