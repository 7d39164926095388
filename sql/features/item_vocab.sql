-- Build step 3a: add this build's surviving items to features.item_vocab.
-- Known items keep their index (first_seen moves back, last_seen forward, n_events = this build's
-- count); new items take the next indices in (first_seen, item_id) order.
MERGE INTO features.item_vocab AS vocab
USING (
    WITH build_items AS (
        SELECT item_id, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS n_events
        FROM fe_events
        GROUP BY item_id
    ),

    new_items AS (
        SELECT
            item_id,
            (SELECT coalesce(max(item_idx), -1) FROM features.item_vocab)
                + row_number() OVER (ORDER BY first_seen, item_id) AS item_idx
        FROM build_items
        WHERE item_id NOT IN (SELECT item_id FROM features.item_vocab)
    ),

    final AS (
        SELECT b.*, n.item_idx
        FROM build_items AS b
        LEFT JOIN new_items AS n USING (item_id)
    )

    SELECT * FROM final
) AS build
ON vocab.item_id = build.item_id
WHEN MATCHED THEN UPDATE SET
    first_seen = least(vocab.first_seen, build.first_seen),
    last_seen = greatest(vocab.last_seen, build.last_seen),
    n_events = build.n_events
WHEN NOT MATCHED THEN INSERT (item_id, item_idx, first_seen, last_seen, n_events)
    VALUES (build.item_id, build.item_idx, build.first_seen, build.last_seen, build.n_events)
