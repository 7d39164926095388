-- Forget tonight's candidates of one model for a session's next-item predictions (write_candidates replaces them).
DELETE FROM recs.candidate_session_next
WHERE run_date = $run_date AND model = $model;
