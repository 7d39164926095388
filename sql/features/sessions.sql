-- Build step 5b: one row per surviving session, with its user's and its own stable index.
INSERT INTO features.sessions (session_id, user_id, start_ts, end_ts, length, user_idx, session_idx)
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

final AS (
    SELECT s.*, u.user_idx, sv.session_idx
    FROM source AS s
    LEFT JOIN features.user_vocab AS u USING (user_id)
    LEFT JOIN features.session_vocab AS sv USING (session_id)
)

SELECT * FROM final
