-- Catalogue coverage of the night: distinct recommended items per stage, kind and model version, in
-- recs.recommendations (what the gate published) and recs.candidates (what every model scored before
-- the gate). `table_label` is what the report shows, e.g. 'recs.recommendations: session_next'.
WITH night AS (
    SELECT 'recs.recommendations' AS source, kind, model, model_version, entity_id, item_id
    FROM recs.recommendations
    WHERE run_date = $run_date
    UNION ALL
    SELECT 'recs.candidates', kind, model, model_version, entity_id, item_id
    FROM recs.candidates
    WHERE run_date = $run_date
)
SELECT
    source || ': ' || kind     AS table_label,
    source,
    kind,
    model,
    model_version,
    count(*)                   AS rows,
    count(DISTINCT entity_id)  AS entities,
    count(DISTINCT item_id)    AS items
FROM night
GROUP BY source, kind, model, model_version
ORDER BY source DESC, kind DESC, model, model_version;
