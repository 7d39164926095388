-- What the published file holds: one row per kind, night and model (analysts' table of contents, and
-- what recs.latest and recs.champions pick from without scanning recs.recommendations).
CREATE TABLE pub.recs.nights AS
SELECT kind, run_date, model, min(model_version) AS model_version, count(*) AS rows
FROM pub.recs.recommendations
GROUP BY kind, run_date, model
ORDER BY kind, run_date, model;
