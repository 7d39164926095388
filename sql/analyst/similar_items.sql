-- Which items are most similar to ONE item, per model, from each model's latest published night?
--
-- Run:
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/similar_items.sql
--   clickrec query --file sql/analyst/similar_items.sql --var item_id=214536502
--   duckdb: run `SET VARIABLE item_id = '214536502';` first (without it: the item with most neighbours
--   listed, ties by smallest id).
-- Source: recs.latest_item_similar. For several nights, use recs.item_similar and filter run_date.
SET VARIABLE item_id = coalesce(getvariable('item_id'), (
    SELECT item_id FROM recs.latest_item_similar GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 1));
SELECT
    model,
    model_version,
    run_date,
    rank,
    similar_item_id,
    round(score, 4) AS score
FROM recs.latest_item_similar
WHERE item_id = getvariable('item_id')::VARCHAR   -- original id, exact spelling
ORDER BY model, rank;
