-- What does the champion predict a session clicks next?
--
-- Run:
--   clickrec query --file sql/analyst/session_recommendations.sql --var session_id=s-42
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/session_recommendations.sql
-- Parameters: session_id (default: the smallest session id the champion published), top_n (default 10).
-- Source: recs.champion_for_sessions, the session_next champion of recs.champions (the published model
-- with the best P4-session HR@20). For every model's predictions use recs.latest WHERE kind = 'session_next'.
SET VARIABLE session_id = coalesce(getvariable('session_id')::VARCHAR,
    (SELECT min(session_id) FROM recs.champion_for_sessions));
SET VARIABLE top_n = coalesce(getvariable('top_n')::INTEGER, 10);
SELECT session_id, rank, item_id, round(score, 4) AS score, model, model_version, run_date
FROM recs.champion_for_sessions
WHERE session_id = getvariable('session_id')
  AND rank <= getvariable('top_n')
ORDER BY rank;
