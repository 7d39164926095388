-- What does each model recommend to ONE user, from its latest published night?
--
-- Run (read-only, on the analysts' copy; never on the working clickrec.duckdb):
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/user_recommendations.sql
--   clickrec query "$(cat sql/analyst/user_recommendations.sql)"
-- EDIT the user id in the WHERE line marked EDIT (a literal example: the duckdb CLI has no parameters).
-- Source: recs.latest_user_topn = for each model, the rows of the last night it was published (a model
-- the gate rejected tonight still shows its last accepted night; run_date says which).
-- Scores compare items within one model_version only, never across models.
SELECT
    model,
    model_version,
    run_date,
    rank,
    item_id,
    round(score, 4) AS score
FROM recs.latest_user_topn
WHERE user_id = 'u1'   -- EDIT: the user to look up (original id, exact spelling)
ORDER BY model, rank;
