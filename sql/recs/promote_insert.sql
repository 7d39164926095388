-- ... and the accepted version's candidates of every kind take their place (same transaction).
INSERT INTO recs.recommendations BY NAME
SELECT kind, run_date, model, model_version, entity_id, rank, item_id, score
FROM recs.candidates
WHERE run_date = $run_date AND model = $model AND model_version = $model_version;
