-- Before the gate: distinct scored items of the night per model version in recs.candidate_user_topn.
SELECT model, model_version, count(*) AS rows, count(DISTINCT user_id) AS entities,
       count(DISTINCT item_id) AS items
FROM recs.candidate_user_topn
WHERE run_date = $run_date
GROUP BY model, model_version
ORDER BY model, model_version;
