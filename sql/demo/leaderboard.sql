-- The demo's leaderboard: tonight's P4 figures of every model and the gate's decision.
SELECT r.model, m.protocol,
       round(max(m.value) FILTER (WHERE m.metric = 'HR' AND m.k = 10), 4)  AS "HR@10",
       round(max(m.value) FILTER (WHERE m.metric = 'HR' AND m.k = 20), 4)  AS "HR@20",
       round(max(m.value) FILTER (WHERE m.metric = 'MRR' AND m.k = 20), 4) AS "MRR@20",
       max(m.value) FILTER (WHERE m.metric = 'n_predictions')::BIGINT      AS predictions,
       r.status, round(r.train_seconds, 1) AS train_s
FROM models.model_runs AS r
JOIN models.eval_metrics AS m USING (model, version, run_date)
WHERE r.run_date = (SELECT max(run_date) FROM models.model_runs)
GROUP BY r.model, m.protocol, r.status, r.train_seconds
ORDER BY m.protocol, "HR@20" DESC NULLS LAST;
