-- Each file's accepted days against the mean daily count of the $trailing_days days before each in
-- raw.clicks. ratio is NULL (check skipped) for a day without any history in its window; GX's
-- between-check ignores NULLs, which is exactly that skip.
CREATE OR REPLACE TABLE staging.validate_day_counts AS
SELECT
    d.file_index,
    d.event_date,
    d.row_count,
    count(h.event_date) AS history_days,
    avg(h.row_count) AS trailing_mean,
    d.row_count / avg(h.row_count) AS ratio
FROM staging.validate_days d
LEFT JOIN staging.validate_history h
    ON h.event_date < d.event_date
   AND h.event_date >= d.event_date - CAST($trailing_days AS INTEGER)
GROUP BY d.file_index, d.event_date, d.row_count
ORDER BY d.file_index, d.event_date;
