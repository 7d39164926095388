-- Build step 3c: add this build's surviving sessions (entity = session only) to features.session_vocab.
-- Known sessions keep their index (first_seen moves back, last_seen forward, n_events = this build's
-- count); new sessions take the next indices in (first_seen, session_id) order.
MERGE INTO features.session_vocab AS vocab
USING (
    WITH build_sessions AS (
        SELECT session_id, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS n_events
        FROM fe_events
        GROUP BY session_id
    ),

    new_sessions AS (
        SELECT
            session_id,
            (SELECT coalesce(max(session_idx), -1) FROM features.session_vocab)
                + row_number() OVER (ORDER BY first_seen, session_id) AS session_idx
        FROM build_sessions
        WHERE session_id NOT IN (SELECT session_id FROM features.session_vocab)
    ),

    final AS (
        SELECT b.*, n.session_idx
        FROM build_sessions AS b
        LEFT JOIN new_sessions AS n USING (session_id)
    )

    SELECT * FROM final
) AS build
ON vocab.session_id = build.session_id
WHEN MATCHED THEN UPDATE SET
    first_seen = least(vocab.first_seen, build.first_seen),
    last_seen = greatest(vocab.last_seen, build.last_seen),
    n_events = build.n_events
WHEN NOT MATCHED THEN INSERT (session_id, session_idx, first_seen, last_seen, n_events)
    VALUES (build.session_id, build.session_idx, build.first_seen, build.last_seen, build.n_events)
