-- Every checkpoint the working database knows: the newest night that recorded it, and whether it is a
-- champion's (the last published version of its model), which retention always keeps.
WITH runs AS (
    SELECT checkpoint_path,
           run_date,
           status,
           max(run_date) FILTER (WHERE status = $published) OVER (PARTITION BY model) AS last_published
    FROM models.model_runs
    WHERE checkpoint_path IS NOT NULL
)
SELECT checkpoint_path,
       max(run_date)                                                       AS run_date,
       coalesce(bool_or(status = $published AND run_date = last_published), false) AS champion
FROM runs
GROUP BY checkpoint_path
ORDER BY checkpoint_path;
