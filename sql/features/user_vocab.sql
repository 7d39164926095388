-- Build step 3b: add this build's users (of surviving sessions) to features.user_vocab.
-- Known users keep their index (first_seen moves back, last_seen forward, n_events = this build's
-- count); new users take the next indices in (first_seen, user_id) order.
MERGE INTO features.user_vocab AS vocab
USING (
    WITH build_users AS (
        -- a session's user is its first non-NULL user_id (events.sql); anonymous sessions add nobody
        SELECT session_user_id AS user_id, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS n_events
        FROM fe_events
        WHERE session_user_id IS NOT NULL
        GROUP BY session_user_id
    ),

    new_users AS (
        SELECT
            user_id,
            (SELECT coalesce(max(user_idx), -1) FROM features.user_vocab)
                + row_number() OVER (ORDER BY first_seen, user_id) AS user_idx
        FROM build_users
        WHERE user_id NOT IN (SELECT user_id FROM features.user_vocab)
    ),

    final AS (
        SELECT b.*, n.user_idx
        FROM build_users AS b
        LEFT JOIN new_users AS n USING (user_id)
    )

    SELECT * FROM final
) AS build
ON vocab.user_id = build.user_id
WHEN MATCHED THEN UPDATE SET
    first_seen = least(vocab.first_seen, build.first_seen),
    last_seen = greatest(vocab.last_seen, build.last_seen),
    n_events = build.n_events
WHEN NOT MATCHED THEN INSERT (user_id, user_idx, first_seen, last_seen, n_events)
    VALUES (build.user_id, build.user_idx, build.first_seen, build.last_seen, build.n_events)
