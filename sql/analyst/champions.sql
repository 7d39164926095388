-- Which model serves each kind of recommendation, on what figure, and how much does it publish?
--
-- Run:
--   clickrec query --file sql/analyst/champions.sql
-- No parameters. Source: recs.champions (one row per kind) and recs.nights (rows published).
WITH champions AS (
    SELECT kind, model, model_version, run_date, protocol, metric, k, value
    FROM recs.champions
),
published AS (
    SELECT kind, model, run_date, rows
    FROM recs.nights
)
SELECT
    c.kind,
    c.model,
    c.model_version,
    c.run_date,
    c.protocol || ' ' || c.metric || '@' || c.k AS figure,
    round(c.value, 4)                           AS value,
    p.rows
FROM champions c
LEFT JOIN published p USING (kind, model, run_date)
ORDER BY c.kind;
