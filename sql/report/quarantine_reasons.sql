-- Quarantined rows of the window's ingest runs by check (reason text up to its first colon, as in status).
WITH window_runs AS (
    SELECT DISTINCT run_id FROM ops.ingest_files
    WHERE day BETWEEN $start AND $end
       OR (day IS NULL AND CAST(max_ts AS DATE) >= $start AND CAST(min_ts AS DATE) <= $end)
)
SELECT split_part(reason, ':', 1) AS reason, count(*) AS rows
FROM quarantine.clicks
WHERE run_id IN (SELECT run_id FROM window_runs)
GROUP BY ALL
ORDER BY rows DESC, reason;
