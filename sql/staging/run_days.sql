-- The days run $run_id wrote to the lake.
SELECT DISTINCT event_date::VARCHAR FROM ops.lake_files WHERE run_id = $run_id ORDER BY 1;
