-- ... and the accepted version's candidates take their place (same transaction as the delete).
INSERT INTO recs.item_similar
SELECT run_date, model, model_version, item_id, rank, similar_item_id, score
FROM recs.candidate_item_similar
WHERE run_date = $run_date AND model = $model AND model_version = $model_version;
