-- Figures arrive as a registered Arrow table `metrics_in` (protocol, metric, k, value).
INSERT INTO models.eval_metrics BY NAME
SELECT $run_id AS run_id, $model AS model, $version AS version, $run_date AS run_date,
       protocol, metric, k, value
FROM metrics_in;
