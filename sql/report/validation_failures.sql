-- Failed expectations of the ingest runs that loaded the report window (batch = ingested file name).
WITH window_runs AS (
    SELECT DISTINCT run_id FROM ops.ingest_files
    WHERE day BETWEEN $start AND $end
       OR (day IS NULL AND CAST(max_ts AS DATE) >= $start AND CAST(min_ts AS DATE) <= $end)
)
SELECT v.run_id, v.batch, v.expectation, v.column_name, v.level,
       v.unexpected_count, v.element_count, v.observed_value
FROM ops.validation_results AS v
WHERE NOT v.success
  AND v.run_id IN (SELECT run_id FROM window_runs)
ORDER BY v.validated_at, v.batch, v.expectation, v.column_name;
