-- Loader: session_no -> session_id for the sessions ending on a day in [$start_date, $end_date]
-- (a superset of what load_sessions.sql returns for the same window), in session_no order.
SELECT session_no, session_id
FROM features.sessions
WHERE end_ts >= CAST($start_date AS TIMESTAMP)
  AND end_ts < CAST($end_date AS TIMESTAMP) + INTERVAL 1 DAY
ORDER BY session_no
