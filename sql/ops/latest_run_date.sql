-- The most recent night that trained models.
SELECT max(run_date) FROM models.model_runs;
