-- Rows and a content fingerprint per kind and night in the new published file. The lake rewrites a
-- partition only when its fingerprint changed (most nights only tonight's partition does): the sum of
-- row hashes is order-independent, and rows are unique per (model, entity, rank).
SELECT 'user_topn' AS kind, run_date, count(*) AS rows,
       sum(hash(model, model_version, user_id, rank, item_id, score))::VARCHAR AS content_hash
FROM pub.recs.user_topn GROUP BY run_date
UNION ALL
SELECT 'session_next', run_date, count(*),
       sum(hash(model, model_version, session_id, rank, item_id, score))::VARCHAR
FROM pub.recs.session_next GROUP BY run_date
UNION ALL
SELECT 'item_similar', run_date, count(*),
       sum(hash(model, model_version, item_id, rank, similar_item_id, score))::VARCHAR
FROM pub.recs.item_similar GROUP BY run_date
ORDER BY kind, run_date;
