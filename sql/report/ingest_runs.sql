-- Ingest accounting per run and day for the report window: read = accepted + quarantined + duplicates
-- + filtered + other days + blank lines; flags = guard rails passed (duplicate / filtered / null-key share). Runs without --date (day NULL) count when their files overlap the window.
SELECT run_id,
       day,
       count(*)              AS files,
       sum(rows_read)        AS rows_read,
       sum(rows_accepted)    AS rows_accepted,
       sum(rows_quarantined) AS rows_quarantined,
       sum(rows_duplicate)   AS rows_duplicate,
       sum(rows_other_days)  AS rows_other_days,
       sum(rows_filtered)    AS rows_filtered,
       sum(rows_blank)       AS rows_blank,
       string_agg(flags, '; ') AS flags,
       max(ingested_at)      AS ingested_at
FROM ops.ingest_files
WHERE day BETWEEN $start AND $end
   OR (day IS NULL AND CAST(max_ts AS DATE) >= $start AND CAST(min_ts AS DATE) <= $end)
GROUP BY run_id, day
ORDER BY ingested_at, run_id;
