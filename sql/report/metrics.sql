-- Every evaluated model version of the night, metrics pivoted to columns, with its gate outcome.
SELECT e.model,
       e.version,
       e.protocol,
       max(e.value) FILTER (WHERE e.metric = 'HR'   AND e.k = 10) AS hr10,
       max(e.value) FILTER (WHERE e.metric = 'HR'   AND e.k = 20) AS hr20,
       max(e.value) FILTER (WHERE e.metric = 'MRR'  AND e.k = 20) AS mrr20,
       max(e.value) FILTER (WHERE e.metric = 'NDCG' AND e.k = 10) AS ndcg10,
       max(e.value) FILTER (WHERE e.metric = 'COV'  AND e.k = 20) AS cov20,
       max(e.value) FILTER (WHERE e.metric = 'n_predictions')     AS n_predictions,
       any_value(r.status)      AS status,
       any_value(r.gate_reason) AS gate_reason
FROM models.eval_metrics AS e
LEFT JOIN models.model_runs AS r
       ON r.model = e.model AND r.version = e.version AND r.run_date = e.run_date
WHERE e.run_date = $run_date
GROUP BY e.model, e.version, e.protocol
ORDER BY e.protocol, e.model, e.version;
