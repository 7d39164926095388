-- recs.user_topn into the new published file (attached as `pub`), the nights within retention only.
-- Sorted so that an analyst's filter on one night / model / user_id reads few row groups.
CREATE TABLE pub.recs.user_topn AS
SELECT run_date, model, model_version, user_id, rank, item_id, score
FROM recs.user_topn
WHERE run_date >= $cutoff
ORDER BY run_date, model, user_id, rank;
