-- The champion of each kind: of the models published for that kind, the one whose latest published
-- version scored best on the kind's gate figure (`kind_figures`, registered by the caller from the one
-- place the gate's figures are defined: kind, protocol, metric, k), on its own night.
-- Ties, and models without a figure, go to the newest night, then the model name.
CREATE TABLE pub.recs.champions AS
WITH latest AS (
    SELECT kind, model, max(run_date) AS run_date
    FROM pub.recs.nights
    GROUP BY kind, model
),
versions AS (
    SELECT l.kind, l.model, n.model_version, l.run_date
    FROM latest l
    JOIN pub.recs.nights n USING (kind, model, run_date)
),
scored AS (
    SELECT v.kind, v.model, v.model_version, v.run_date, f.protocol, f.metric, f.k, m.value
    FROM versions v
    LEFT JOIN kind_figures f ON f.kind = v.kind
    LEFT JOIN models.eval_metrics m
           ON m.model = v.model AND m.version = v.model_version AND m.run_date = v.run_date
          AND m.protocol = f.protocol AND m.metric = f.metric AND m.k = f.k
)
SELECT kind, model, model_version, run_date, protocol, metric, k, value
FROM scored
QUALIFY row_number() OVER (PARTITION BY kind ORDER BY value DESC NULLS LAST, run_date DESC, model) = 1
ORDER BY kind;
