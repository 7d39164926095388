-- Which items are most similar to ONE item, per model, from each model's latest published night?
--
-- Run:
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/similar_items.sql
--   clickrec query "$(cat sql/analyst/similar_items.sql)"
-- EDIT the item id in the WHERE line marked EDIT (a literal example id).
-- Source: recs.latest_item_similar. For several nights, use recs.item_similar and filter run_date.
SELECT
    model,
    model_version,
    run_date,
    rank,
    similar_item_id,
    round(score, 4) AS score
FROM recs.latest_item_similar
WHERE item_id = 'apple'   -- EDIT: the item to look up (original id, exact spelling)
ORDER BY model, rank;
