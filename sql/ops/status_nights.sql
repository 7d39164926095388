-- The last nights that trained models: how many versions each published, rejected or left unselected.
SELECT run_date,
       count(*)                                          AS models,
       count(*) FILTER (WHERE status = 'published')      AS published,
       count(*) FILTER (WHERE status = 'rejected')       AS rejected,
       count(*) FILTER (WHERE status = 'not-selected')   AS not_selected,
       count(*) FILTER (WHERE status NOT IN ('published', 'rejected', 'not-selected')) AS other,
       round(sum(train_seconds), 1)                      AS train_seconds,
       max(trained_at)                                   AS last_trained_at
FROM models.model_runs
GROUP BY run_date
ORDER BY run_date DESC
LIMIT $limit;
