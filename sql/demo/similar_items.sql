-- Analyst example 2: the items most similar to the most recommended item of the latest night.
WITH top_item AS (
    SELECT item_id FROM recs.latest_user_topn GROUP BY item_id ORDER BY count(*) DESC, item_id LIMIT 1
)
SELECT s.model, s.item_id, s.rank, s.similar_item_id, round(s.score, 4) AS cosine
FROM recs.latest_item_similar AS s
JOIN top_item USING (item_id)
WHERE s.rank <= 5
ORDER BY s.model, s.rank;
