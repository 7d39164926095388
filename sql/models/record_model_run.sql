-- One trained model version (status 'trained' until the gate decides). Replaces a retried run's row.
DELETE FROM models.model_runs WHERE model = $model AND version = $version AND run_date = $run_date;
