-- Forget tonight's candidates of one model for a user's top-N items (write_candidates replaces them).
DELETE FROM recs.candidate_user_topn
WHERE run_date = $run_date AND model = $model;
