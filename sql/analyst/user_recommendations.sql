-- What does each model recommend to ONE user, from its latest published night?
--
-- Run (read-only, on the analysts' copy; never on the working clickrec.duckdb):
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/user_recommendations.sql
--   clickrec query --file sql/analyst/user_recommendations.sql --var user_id=u1
--   duckdb: run `SET VARIABLE user_id = 'u1';` first (without it: the first user id published).
-- Source: recs.latest_user_topn = for each model, the rows of the last night it was published (a model
-- the gate rejected tonight still shows its last accepted night; run_date says which).
-- Scores compare items within one model_version only, never across models.
-- On session sources (yoochoose, sessionrec) user_id holds the session id.
SET VARIABLE user_id = coalesce(getvariable('user_id'), (SELECT min(user_id) FROM recs.latest_user_topn));
SELECT
    model,
    model_version,
    run_date,
    rank,
    item_id,
    round(score, 4) AS score
FROM recs.latest_user_topn
WHERE user_id = getvariable('user_id')::VARCHAR   -- original id, exact spelling
ORDER BY model, rank;
