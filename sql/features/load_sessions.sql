-- Loader: the events of sessions that END on a day in [$start_date, $end_date], in session order
-- (start_ts, session_id) then position, ready to become recmodels.data.Sessions.
-- A session belongs to the day of its last event: one that crosses midnight into the test day is
-- a test session, so no training session ever contains a test-day event.
--   $known_from, $known_before   when $known_before is not NULL, keep only items occurring in
--                                sessions ending in [$known_from, $known_before) (P1/P4 rule: items
--                                the model never trained on are dropped from evaluation sessions)
--   $min_length                  then drop sessions left shorter than this
WITH sessions_in_range AS (
    SELECT session_id, start_ts
    FROM features.sessions
    WHERE CAST(end_ts AS DATE) BETWEEN $start_date AND $end_date
),

known_items AS (
    SELECT DISTINCT e.item_idx
    FROM features.session_events AS e
    JOIN features.sessions AS s USING (session_id)
    WHERE CAST(s.end_ts AS DATE) >= $known_from
      AND CAST(s.end_ts AS DATE) < $known_before
),

events AS (
    SELECT e.session_id, e.position, e.item_idx, e.ts
    FROM features.session_events AS e
    SEMI JOIN sessions_in_range AS s ON e.session_id = s.session_id
    WHERE $known_before IS NULL
       OR e.item_idx IN (SELECT item_idx FROM known_items)
),

kept_sessions AS (
    SELECT
        s.session_id,
        row_number() OVER (ORDER BY s.start_ts, s.session_id) AS session_no
    FROM sessions_in_range AS s
    JOIN (SELECT session_id, count(*) AS n FROM events GROUP BY session_id) AS c USING (session_id)
    WHERE c.n >= $min_length
),

final AS (
    SELECT k.session_no, e.session_id, e.item_idx, epoch(e.ts) AS t
    FROM events AS e
    JOIN kept_sessions AS k USING (session_id)
    ORDER BY k.session_no, e.position
)

SELECT * FROM final
