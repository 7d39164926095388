-- Per-file accounting inside the scratch database after validation. Every row read lands in
-- exactly one bucket: malformed (quarantined whole), duplicate, rejected by a row-level check
-- (quarantined), outside the run's day, or accepted.
WITH b AS (
    SELECT b.*, r.source_row IS NOT NULL AS rejected
    FROM staging.batch b
    LEFT JOIN (SELECT DISTINCT source_row FROM staging.rejects) r USING (source_row)
)
SELECT
    count(*) FILTER (WHERE is_duplicate) AS duplicates,
    count(*) FILTER (WHERE NOT is_duplicate AND rejected) AS rejected,
    count(*) FILTER (WHERE NOT is_duplicate AND NOT rejected AND $day_from IS NOT NULL AND event_date NOT BETWEEN $day_from AND $day_to) AS other_days,
    count(*) FILTER (WHERE NOT is_duplicate AND NOT rejected AND ($day_from IS NULL OR event_date BETWEEN $day_from AND $day_to)) AS accepted,
    count(*) AS batch_rows,
    min(ts) FILTER (WHERE NOT is_duplicate AND NOT rejected) AS min_ts,
    max(ts) FILTER (WHERE NOT is_duplicate AND NOT rejected) AS max_ts
FROM b;
