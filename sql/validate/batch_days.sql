-- Accepted rows (not duplicate, not rejected) per event_date: the days this batch would add
-- (only the run's days in a --date / range run: rows of other days are not this run's).
CREATE OR REPLACE TABLE staging.validate_days AS
SELECT v.event_date, count(*) AS row_count
FROM staging.validate_rows v
ANTI JOIN staging.rejects r USING (source_file, source_row)
WHERE v.event_date IS NOT NULL
  AND ($day_from IS NULL OR v.event_date BETWEEN $day_from AND $day_to)
GROUP BY v.event_date;
