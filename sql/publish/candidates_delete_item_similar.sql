-- Forget tonight's candidates of one model for an item's most similar items (write_candidates replaces them).
DELETE FROM recs.candidate_item_similar
WHERE run_date = $run_date AND model = $model;
