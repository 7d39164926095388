-- A pending lake file whose staged copy is gone (the run was killed after its commit): rebuilt from
-- raw.clicks, which holds exactly its rows (same run, same landing file, same day). Written to a
-- temporary path, then renamed into place by the caller.
COPY (
    SELECT session_id, user_id, item_id, event_type, category, ts, source_file, source_row, run_id,
           ingested_at, file_id, weight
    FROM raw.clicks
    WHERE run_id = $run_id AND file_id IS NOT DISTINCT FROM $file_id AND event_date = $event_date
    ORDER BY source_row
) TO $out (FORMAT parquet, COMPRESSION zstd);
