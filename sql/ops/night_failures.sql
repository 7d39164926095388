-- The failed runs of one night, oldest first (the night's report).
SELECT failed_at, flow, run_name, state, error
FROM ops.flow_failures
WHERE run_date = $run_date
ORDER BY failed_at;
