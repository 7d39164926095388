-- Every evaluation figure ever computed (small: a few dozen rows per model per night). Columns are
-- listed, not `*`: the published file is a contract (sql/published/columns.yaml), and a column added
-- to the working table reaches analysts only when it is published and documented here.
CREATE TABLE pub.models.eval_metrics AS
SELECT run_id, model, version, run_date, protocol, metric, k, value
FROM models.eval_metrics
ORDER BY run_date, model, version, protocol, metric, k;
