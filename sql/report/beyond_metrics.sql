-- Beyond-accuracy and per-segment figures of the night's model versions (recmodels/beyond.py):
-- COVERAGE / POPULARITY / NOVELTY / TAIL at k, and segment figures spelled NAME:segment ("HR:head",
-- "NDCG:len:3-4", "n:new" = the segment's predictions, k NULL).
SELECT model, version, protocol, metric, k, value
FROM models.eval_metrics
WHERE run_date = $run_date
  AND (metric IN ('COVERAGE', 'POPULARITY', 'NOVELTY', 'TAIL') OR metric LIKE '%:%')
ORDER BY protocol, model, version, metric, k;
