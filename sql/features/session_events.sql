-- Build step 5b: surviving events with their session's number, stable item index and 0-based
-- position; stored in (session_no, position) order so scans of a date range touch few row groups.
-- weight: the event's weight (events.sql: its type's weight, the largest of a collapsed run).
INSERT INTO features.session_events (session_no, session_id, position, item_idx, ts, weight)
WITH source AS (
    SELECT session_id, item_id, ts, source_file, source_row, weight
    FROM fe_events
),

indexed AS (
    SELECT
        s.session_no,
        e.session_id,
        CAST(row_number() OVER (
            PARTITION BY e.session_id ORDER BY e.ts, e.source_file, e.source_row
        ) - 1 AS INTEGER) AS position,
        v.item_idx,
        e.ts,
        e.weight
    FROM source AS e
    JOIN features.item_vocab AS v USING (item_id)
    JOIN features.sessions AS s USING (session_id)
)

SELECT * FROM indexed
ORDER BY session_no, position
