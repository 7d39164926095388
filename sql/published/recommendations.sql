-- recs.recommendations into the new published file (attached as `pub`), the nights within retention.
-- Sorted so that an analyst's filter on one kind / night / model / entity reads few row groups.
CREATE TABLE pub.recs.recommendations AS
SELECT kind, run_date, model, model_version, entity_id, rank, item_id, score
FROM recs.recommendations
WHERE run_date >= $cutoff
ORDER BY kind, run_date, model, entity_id, rank;
