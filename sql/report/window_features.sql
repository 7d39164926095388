-- Fallback training window: the latest feature build that ends before the night.
SELECT start_date, end_date
FROM features.builds
WHERE end_date < $run_date
ORDER BY built_at DESC
LIMIT 1;
