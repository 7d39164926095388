-- What the published file holds: one row per table, night and model (analysts' table of contents, and
-- what the latest_* views pick from without scanning the big tables).
CREATE TABLE pub.recs.nights AS
SELECT 'user_topn' AS table_name, run_date, model, min(model_version) AS model_version, count(*) AS rows
FROM pub.recs.user_topn GROUP BY run_date, model
UNION ALL
SELECT 'session_next', run_date, model, min(model_version), count(*)
FROM pub.recs.session_next GROUP BY run_date, model
UNION ALL
SELECT 'item_similar', run_date, model, min(model_version), count(*)
FROM pub.recs.item_similar GROUP BY run_date, model
ORDER BY table_name, run_date, model;
