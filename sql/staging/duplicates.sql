-- Exact duplicates of an earlier kept row: every row of a group of equal canonical events except
-- the group's first line. They are counted and dropped, never quarantined (unless the profile says
-- dedupe = false). Duplicates are rare, so the groups are first narrowed by a hash of the event
-- (one aggregate over a single integer), then equality of every field decides (PARTITION BY treats
-- NULLs as equal, like IS NOT DISTINCT FROM). Filtered rows and malformed lines are never duplicates.
CREATE OR REPLACE TABLE staging.duplicates AS
WITH keyed AS (
    SELECT source_row, session_id, user_id, item_id, event_type, category, ts,
           hash(session_id, user_id, item_id, event_type, category, ts) AS event_key
    FROM staging.batch
    WHERE $dedupe AND line_reason IS NULL AND NOT is_filtered
),
shared_keys AS (
    SELECT event_key FROM keyed GROUP BY event_key HAVING count(*) > 1
),
groups AS (
    SELECT source_row,
           min(source_row) OVER (PARTITION BY session_id, user_id, item_id, event_type, category, ts) AS first_row
    FROM keyed SEMI JOIN shared_keys USING (event_key)
)
SELECT source_row FROM groups WHERE source_row <> first_row;
