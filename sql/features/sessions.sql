-- Build step 5a: one row per surviving session, numbered in (start_ts, session_id) order, with its
-- user's and its own stable index.
INSERT INTO features.sessions (session_no, session_id, user_id, start_ts, end_ts, length, user_idx, session_idx)
WITH source AS (
    SELECT
        session_id,
        any_value(session_user_id) AS user_id,  -- constant within a session (events.sql)
        min(ts) AS start_ts,
        max(ts) AS end_ts,
        CAST(count(*) AS INTEGER) AS length
    FROM fe_events
    GROUP BY session_id
),

numbered AS (
    SELECT row_number() OVER (ORDER BY start_ts, session_id) AS session_no, *
    FROM source
),

final AS (
    SELECT
        n.session_no, n.session_id, n.user_id, n.start_ts, n.end_ts, n.length,
        u.user_idx, sv.session_idx
    FROM numbered AS n
    LEFT JOIN features.user_vocab AS u USING (user_id)
    LEFT JOIN features.session_vocab AS sv USING (session_id)
)

SELECT * FROM final
ORDER BY session_no
