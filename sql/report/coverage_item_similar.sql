-- Distinct recommended (similar) items of the night per model version in recs.item_similar.
SELECT model, model_version, count(*) AS rows, count(DISTINCT item_id) AS entities,
       count(DISTINCT similar_item_id) AS items
FROM recs.item_similar
WHERE run_date = $run_date
GROUP BY model, model_version
ORDER BY model, model_version;
