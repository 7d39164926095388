-- recs.item_similar into the new published file (attached as `pub`), the nights within retention only.
-- Sorted so that an analyst's filter on one night / model / item_id reads few row groups.
CREATE TABLE pub.recs.item_similar AS
SELECT run_date, model, model_version, item_id, rank, similar_item_id, score
FROM recs.item_similar
WHERE run_date >= $cutoff
ORDER BY run_date, model, item_id, rank;
