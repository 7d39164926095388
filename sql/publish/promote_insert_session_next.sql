-- ... and the accepted version's candidates take their place (same transaction as the delete).
INSERT INTO recs.session_next
SELECT run_date, model, model_version, session_id, rank, item_id, score
FROM recs.candidate_session_next
WHERE run_date = $run_date AND model = $model AND model_version = $model_version;
