-- Every evaluation figure ever computed (small: a few dozen rows per model per night).
CREATE TABLE pub.models.eval_metrics AS
SELECT * FROM models.eval_metrics
ORDER BY run_date, model, version, protocol, metric, k;
