-- A re-run of the same night replaces that model version's figures.
DELETE FROM models.eval_metrics WHERE model = $model AND version = $version AND run_date = $run_date;
