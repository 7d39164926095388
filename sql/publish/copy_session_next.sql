-- recs.session_next into the new published file (attached as `pub`), the nights within retention only.
-- Sorted so that an analyst's filter on one night / model / session_id reads few row groups.
CREATE TABLE pub.recs.session_next AS
SELECT run_date, model, model_version, session_id, rank, item_id, score
FROM recs.session_next
WHERE run_date >= $cutoff
ORDER BY run_date, model, session_id, rank;
