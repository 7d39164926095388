-- The currently published version of a model (the champion) and its figure for one protocol/metric,
-- from a night before this one.
SELECT r.version, r.run_date, m.value
FROM models.model_runs AS r
LEFT JOIN models.eval_metrics AS m
  ON m.model = r.model AND m.version = r.version AND m.run_date = r.run_date
 AND m.protocol = $protocol AND m.metric = $metric AND m.k = $k
WHERE r.model = $model AND r.status = 'published' AND r.run_date < $run_date
ORDER BY r.run_date DESC
LIMIT 1;
