-- The last published checkpoint of every model before night D: the gate re-scores it on D, and a
-- warm start begins from it.
SELECT model, version, checkpoint_path
FROM models.model_runs
WHERE status = 'published' AND run_date < $run_date AND checkpoint_path IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY model ORDER BY run_date DESC, trained_at DESC) = 1
ORDER BY model;
