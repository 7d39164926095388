-- Rows now published for (run_date, model), per kind (what promote() reports).
SELECT kind, count(*) AS rows
FROM recs.recommendations
WHERE run_date = $run_date AND model = $model
GROUP BY kind;
