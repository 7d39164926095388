-- The gate accepted this model version: the run registry says so (same transaction as the rows).
UPDATE models.model_runs
SET status = 'published'
WHERE model = $model AND version = $model_version;
