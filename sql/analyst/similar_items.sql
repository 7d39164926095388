-- Which items are most similar to ONE item, per model, from each model's latest published night?
--
-- Run:
--   clickrec query --file sql/analyst/similar_items.sql --var item_id=214536502
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/similar_items.sql
-- Parameters: item_id (default: the item recommended most often in recs.latest that has similar items
--             listed; ties by smallest id), top_n (default 10).
-- Source: recs.latest WHERE kind = 'item_similar' (the champion's only: recs.champion_similar_items).
SET VARIABLE item_id = coalesce(getvariable('item_id')::VARCHAR, (
    WITH listed AS (
        SELECT DISTINCT entity_id AS item_id FROM recs.latest WHERE kind = 'item_similar'
    ),
    popularity AS (
        SELECT item_id, count(*) AS times FROM recs.latest WHERE kind <> 'item_similar' GROUP BY item_id
    )
    SELECT l.item_id
    FROM listed l LEFT JOIN popularity p USING (item_id)
    ORDER BY coalesce(p.times, 0) DESC, l.item_id
    LIMIT 1));
SET VARIABLE top_n = coalesce(getvariable('top_n')::INTEGER, 10);
WITH neighbours AS (
    SELECT model, model_version, run_date, entity_id AS item_id, rank, item_id AS similar_item_id, score
    FROM recs.latest
    WHERE kind = 'item_similar'
)
SELECT model, model_version, run_date, item_id, rank, similar_item_id, round(score, 4) AS cosine
FROM neighbours
WHERE item_id = getvariable('item_id')   -- original id, exact spelling
  AND rank <= getvariable('top_n')
ORDER BY model, rank;
