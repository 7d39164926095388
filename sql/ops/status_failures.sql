-- The last failed flow runs, newest first (`clickrec status`).
SELECT failed_at, flow, run_name, run_date, state, error
FROM ops.flow_failures
ORDER BY failed_at DESC
LIMIT $limit;
