-- Primary metric per model and night up to the report night: HR@10 for P4-user, HR@20 otherwise.
-- Several versions of one model in a night: the most recently trained one is the night's figure.
SELECT e.model,
       e.protocol,
       e.run_date,
       CASE WHEN e.protocol = 'P4-user' THEN 'HR@10' ELSE 'HR@20' END AS metric,
       arg_max(e.value, coalesce(r.trained_at, TIMESTAMP '1970-01-01')) AS value
FROM models.eval_metrics AS e
LEFT JOIN models.model_runs AS r
       ON r.model = e.model AND r.version = e.version AND r.run_date = e.run_date
WHERE e.run_date <= $run_date
  AND e.metric = 'HR'
  AND e.k = CASE WHEN e.protocol = 'P4-user' THEN 10 ELSE 20 END
GROUP BY e.model, e.protocol, e.run_date
ORDER BY e.protocol, e.model, e.run_date;
