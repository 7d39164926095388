-- Per-file accounting inside the scratch database after validation. Every staged row lands in
-- exactly one bucket, first match wins: duplicate, rejected by a row-level check (quarantined),
-- outside the run's days, or accepted. Malformed and blank lines never reach staging.batch, and
-- filtered rows left it before validation (drop_filtered.sql); ingest.py counts those apart.
-- null_keys: rows whose keys (item id, and the session key) are NULL, for the guard rail.
WITH b AS (
    SELECT b.*, r.source_row IS NOT NULL AS rejected
    FROM staging.batch b
    LEFT JOIN (SELECT DISTINCT source_row FROM staging.rejects) r USING (source_row)
)
SELECT
    count(*) FILTER (WHERE is_duplicate) AS duplicates,
    count(*) FILTER (WHERE NOT is_duplicate AND rejected) AS rejected,
    count(*) FILTER (WHERE NOT is_duplicate AND NOT rejected AND $day_from IS NOT NULL
                       AND event_date NOT BETWEEN $day_from AND $day_to) AS other_days,
    count(*) FILTER (WHERE NOT is_duplicate AND NOT rejected
                       AND ($day_from IS NULL OR event_date BETWEEN $day_from AND $day_to)) AS accepted,
    count(*) AS batch_rows,
    count(*) FILTER (WHERE item_id IS NULL
                       OR CASE WHEN $session_key THEN session_id IS NULL ELSE user_id IS NULL END) AS null_keys,
    min(ts) FILTER (WHERE NOT is_duplicate AND NOT rejected) AS min_ts,
    max(ts) FILTER (WHERE NOT is_duplicate AND NOT rejected) AS max_ts
FROM b;
