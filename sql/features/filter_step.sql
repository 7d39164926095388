-- Build step 2, one pass of the filter loop: delete from fe_events the events of items with fewer
-- than $min_item_support events, then every event of a session left shorter than
-- $min_session_length. Each removal can make other items rare or other sessions short, so the
-- caller repeats this statement until it deletes nothing. Both filters are monotone, so the loop
-- converges to the largest subset in which every item and every session passes (a unique fixed
-- point, whatever the order of the two filters).
-- Consecutive repeats that appear once a middle item is removed (A B A -> A A) are kept: collapsing
-- is a property of the raw click stream, not re-applied after filtering.
WITH item_support AS (
    SELECT item_id, count(*) AS n_events
    FROM fe_events
    GROUP BY item_id
),

rare_items AS (
    SELECT item_id FROM item_support WHERE n_events < $min_item_support
),

short_sessions AS (
    -- length counted without the rare items' events, which this same pass deletes
    SELECT session_id
    FROM fe_events
    WHERE item_id NOT IN (SELECT item_id FROM rare_items)
    GROUP BY session_id
    HAVING count(*) < $min_session_length
)

DELETE FROM fe_events
WHERE item_id IN (SELECT item_id FROM rare_items)
   OR session_id IN (SELECT session_id FROM short_sessions)
