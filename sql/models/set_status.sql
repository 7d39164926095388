-- The gate's decision for one model version.
UPDATE models.model_runs SET status = $status, gate_reason = $reason
WHERE model = $model AND version = $version AND run_date = $run_date;
