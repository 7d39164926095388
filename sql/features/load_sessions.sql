-- Loader: the events of sessions that END on a day in [$start_date, $end_date], in session order
-- (session_no = start_ts, session_id) then position, ready to become recmodels.data.Sessions.
-- A session belongs to the day of its last event: one that crosses midnight into the test day is
-- a test session, so no training session ever contains a test-day event.
--   $known_from, $known_before   when $known_before is not NULL, keep only items occurring in
--                                sessions ending in [$known_from, $known_before) (P1/P4 rule: items
--                                the model never trained on are dropped from evaluation sessions)
--   $min_length                  then drop sessions left shorter than this
-- The session ids come from load_session_ids.sql (same window), not carried through the sort.
WITH sessions_in_range AS (
    SELECT session_no
    FROM features.sessions
    WHERE end_ts >= CAST($start_date AS TIMESTAMP)
      AND end_ts < CAST($end_date AS TIMESTAMP) + INTERVAL 1 DAY
),

known_sessions AS (
    SELECT session_no
    FROM features.sessions
    WHERE end_ts >= CAST($known_from AS TIMESTAMP)
      AND end_ts < CAST($known_before AS TIMESTAMP)
),

known_items AS (
    SELECT DISTINCT e.item_idx
    FROM features.session_events AS e
    SEMI JOIN known_sessions AS k ON e.session_no = k.session_no
),

events AS (
    SELECT e.session_no, e.position, e.item_idx, e.ts
    FROM features.session_events AS e
    SEMI JOIN sessions_in_range AS s ON e.session_no = s.session_no
    WHERE $known_before IS NULL
       OR e.item_idx IN (SELECT item_idx FROM known_items)
),

long_enough AS (
    SELECT session_no
    FROM events
    GROUP BY session_no
    HAVING count(*) >= $min_length
),

final AS (
    SELECT e.session_no, e.item_idx, epoch(e.ts) AS t
    FROM events AS e
    SEMI JOIN long_enough AS l ON e.session_no = l.session_no
    ORDER BY e.session_no, e.position
)

SELECT * FROM final
