-- Rows and a content fingerprint per kind and night in the new published file. The lake rewrites a
-- partition only when its fingerprint changed (most nights only tonight's partition does): the sum of
-- row hashes is order-independent, and rows are unique per (model, entity_id, rank).
SELECT kind, run_date, count(*) AS rows,
       sum(hash(model, model_version, entity_id, rank, item_id, score))::VARCHAR AS content_hash
FROM pub.recs.recommendations
GROUP BY kind, run_date
ORDER BY kind, run_date;
