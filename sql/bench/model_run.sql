-- The benchmark's stand-in model version, so promote() has a model run to mark published.
INSERT INTO models.model_runs (run_id, model, version, run_date, trained_at, status)
VALUES ('bench', 'multvae', 'bench', $run_date, now()::TIMESTAMP, 'trained');
