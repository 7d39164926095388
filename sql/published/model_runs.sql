-- The whole run registry: analysts see which version was published, rejected, and why.
CREATE TABLE pub.models.model_runs AS
SELECT run_id, model, version, run_date, trained_at, window_start, window_end, params, device,
       train_seconds, checkpoint_path, warm_start_from, status, gate_reason
FROM models.model_runs
ORDER BY run_date, model, trained_at;
