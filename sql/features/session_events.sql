-- Build step 5a: surviving events with their stable item index and 0-based position.
INSERT INTO features.session_events (session_id, position, item_idx, ts)
WITH source AS (
    SELECT session_id, item_id, ts, source_file, source_row
    FROM fe_events
),

indexed AS (
    SELECT
        s.session_id,
        CAST(row_number() OVER (
            PARTITION BY s.session_id ORDER BY s.ts, s.source_file, s.source_row
        ) - 1 AS INTEGER) AS position,
        v.item_idx,
        s.ts
    FROM source AS s
    JOIN features.item_vocab AS v USING (item_id)
)

SELECT * FROM indexed
