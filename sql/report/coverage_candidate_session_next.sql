-- Before the gate: distinct scored items of the night per model version in recs.candidate_session_next.
SELECT model, model_version, count(*) AS rows, count(DISTINCT session_id) AS entities,
       count(DISTINCT item_id) AS items
FROM recs.candidate_session_next
WHERE run_date = $run_date
GROUP BY model, model_version
ORDER BY model, model_version;
