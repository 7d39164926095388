-- Forget tonight's candidates of one model for one kind (write_candidates replaces them).
DELETE FROM recs.candidates
WHERE kind = $kind AND run_date = $run_date AND model = $model;
