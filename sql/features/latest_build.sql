-- Loader: the latest build (the splits check its window covers what they read).
SELECT start_date, end_date, entity, n_raw_events, n_events, n_sessions, n_items, filter_rounds
FROM features.builds
ORDER BY built_at DESC
LIMIT 1
