-- How did each model score on the P4 protocols, and was it published?
--
-- Run:
--   clickrec query --file sql/analyst/model_leaderboard.sql --json
--   clickrec query --file sql/analyst/model_leaderboard.sql --var nights=7    (the last 7 nights)
-- Parameters: nights (default 1: the newest night with figures only).
-- P4 = trained on data up to D-1, tested on night D (models.eval_metrics.protocol 'P4-...').
-- One row per (night, protocol, cut-off k, model version): HR / MRR / NDCG / COV at k, how many
-- predictions were scored, the version's status in models.model_runs (published | rejected |
-- not-selected | trained | failed) with the gate's reason, and its NDCG rank among that night's models.
SET VARIABLE nights = coalesce(getvariable('nights')::INTEGER, 1);
WITH recent AS (
    SELECT DISTINCT run_date FROM models.eval_metrics
    ORDER BY run_date DESC
    LIMIT getvariable('nights')
),
figures AS (
    SELECT
        run_date, model, version, protocol, k,
        max(value) FILTER (WHERE metric = 'HR')   AS hr,
        max(value) FILTER (WHERE metric = 'MRR')  AS mrr,
        max(value) FILTER (WHERE metric = 'NDCG') AS ndcg,
        max(value) FILTER (WHERE metric = 'COV')  AS coverage
    FROM models.eval_metrics
    WHERE protocol LIKE 'P4%' AND metric <> 'n_predictions'
      AND run_date IN (SELECT run_date FROM recent)
    GROUP BY ALL
),
counts AS (
    -- n_predictions is stored once per (version, protocol), independent of k.
    SELECT run_date, model, version, protocol, max(value)::BIGINT AS n_predictions
    FROM models.eval_metrics
    WHERE protocol LIKE 'P4%' AND metric = 'n_predictions'
    GROUP BY ALL
)
SELECT
    f.run_date,
    f.protocol,
    f.k,
    f.model,
    f.version,
    r.status,
    r.gate_reason,
    round(f.hr, 4)       AS hr,
    round(f.mrr, 4)      AS mrr,
    round(f.ndcg, 4)     AS ndcg,
    round(f.coverage, 4) AS coverage,
    c.n_predictions,
    rank() OVER (PARTITION BY f.run_date, f.protocol, f.k ORDER BY f.ndcg DESC NULLS LAST) AS ndcg_rank
FROM figures f
LEFT JOIN counts c USING (run_date, model, version, protocol)
LEFT JOIN models.model_runs r
    ON r.model = f.model AND r.version = f.version AND r.run_date = f.run_date
ORDER BY f.run_date DESC, f.protocol, f.k, ndcg_rank, f.model;
