-- ... and the accepted version's candidates take their place (same transaction as the delete).
INSERT INTO recs.user_topn
SELECT run_date, model, model_version, user_id, rank, item_id, score
FROM recs.candidate_user_topn
WHERE run_date = $run_date AND model = $model AND model_version = $model_version;
