-- The night's training window as the model runs recorded it (NULLs when none recorded one).
SELECT min(window_start) AS start_date, max(window_end) AS end_date
FROM models.model_runs
WHERE run_date = $run_date;
