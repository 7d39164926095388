-- Accepted rows (not duplicate, not rejected) per event_date, against the mean daily count of the
-- $trailing_days days before it in raw.clicks. ratio is NULL (check skipped) for a day without any
-- history in its window; GX's between-check ignores NULLs, exactly that skip.
CREATE OR REPLACE TABLE staging.validate_day_counts AS
WITH days AS (
    SELECT v.event_date, count(*) AS row_count
    FROM staging.validate_rows v
    ANTI JOIN staging.rejects r USING (source_file, source_row)
    WHERE v.event_date IS NOT NULL
    GROUP BY v.event_date
)
SELECT
    d.event_date,
    d.row_count,
    count(h.event_date) AS history_days,
    avg(h.row_count) AS trailing_mean,
    d.row_count / avg(h.row_count) AS ratio
FROM days d
LEFT JOIN staging.validate_history h
    ON h.event_date < d.event_date
   AND h.event_date >= d.event_date - CAST($trailing_days AS INTEGER)
GROUP BY d.event_date, d.row_count
ORDER BY d.event_date;
