-- How many model versions a night trained (0: the night never ran).
SELECT count(*) FROM models.model_runs WHERE run_date = $run_date;
