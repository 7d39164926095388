-- What does each model recommend to ONE user, from its latest published night?
--
-- Run (read-only, on the analysts' copy; never on the working clickrec.duckdb):
--   clickrec query --file sql/analyst/user_recommendations.sql --var user_id=u1 --var top_n=5
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/user_recommendations.sql
--   (in a duckdb session: SET VARIABLE user_id = 'u1'; first)
-- Parameters: user_id (default: the user with the most published rows, ties by smallest id),
--             top_n (default 10).
-- Source: recs.latest = for each model, the rows of the last night it was published (a model the gate
-- rejected tonight still shows its last accepted night; run_date says which). Scores compare items
-- within one model_version only. Session sources have no user ids: there this query returns nothing
-- (use session_recommendations.sql).
SET VARIABLE user_id = coalesce(getvariable('user_id')::VARCHAR, (
    SELECT entity_id FROM recs.latest WHERE kind = 'user_topn'
    GROUP BY entity_id ORDER BY count(*) DESC, entity_id LIMIT 1));
SET VARIABLE top_n = coalesce(getvariable('top_n')::INTEGER, 10);
WITH recommended AS (
    SELECT model, model_version, run_date, entity_id AS user_id, rank, item_id, score
    FROM recs.latest
    WHERE kind = 'user_topn'
)
SELECT model, model_version, run_date, user_id, rank, item_id, round(score, 4) AS score
FROM recommended
WHERE user_id = getvariable('user_id')   -- original id, exact spelling
  AND rank <= getvariable('top_n')
ORDER BY model, rank;
