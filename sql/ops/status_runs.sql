-- The last ingest runs with their accounting (newest first). `at` is reserved in DuckDB 2.0
-- (time travel), so the time column is `finished_at`.
SELECT run_id, max(ingested_at) AS finished_at, any_value(profile) AS profile, any_value(day) AS day,
       count(*) AS files, sum(rows_read) AS read, sum(rows_accepted) AS accepted,
       sum(rows_quarantined) AS quarantined, sum(rows_duplicate) AS duplicates,
       sum(rows_other_days) AS other_days, sum(rows_filtered) AS filtered, sum(rows_blank) AS blank,
       string_agg(flags, '; ') AS flags
FROM ops.ingest_files
GROUP BY run_id
ORDER BY finished_at DESC
LIMIT $limit;
