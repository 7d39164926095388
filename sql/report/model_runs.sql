-- Model versions trained for the night (also the failed ones, which have no metrics).
SELECT model, version, status, gate_reason, train_seconds, device, window_start, window_end
FROM models.model_runs
WHERE run_date = $run_date
ORDER BY model, version;
