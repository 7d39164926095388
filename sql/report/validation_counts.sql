-- How many expectations ran / failed for the ingest runs of the report window.
WITH window_runs AS (
    SELECT DISTINCT run_id FROM ops.ingest_files
    WHERE day BETWEEN $start AND $end
       OR (day IS NULL AND CAST(max_ts AS DATE) >= $start AND CAST(min_ts AS DATE) <= $end)
)
SELECT count(*) AS checks, count(*) FILTER (WHERE NOT success) AS failed
FROM ops.validation_results
WHERE run_id IN (SELECT run_id FROM window_runs);
