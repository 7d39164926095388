-- The per-day expectation's input, in one grouped query over the batch: accepted rows (checked, not
-- rejected) per event_date, only the run's days in a --date / range run (other days' rows are not
-- this run's). Also the list of days this file writes to the lake.
CREATE OR REPLACE TABLE staging.validate_days AS
SELECT b.event_date, count(*) AS row_count
FROM staging.batch AS b
ANTI JOIN staging.duplicates AS d USING (source_row)
WHERE b.line_reason IS NULL AND NOT b.is_filtered AND NOT b.rejected
  AND ($day_from IS NULL OR b.event_date BETWEEN $day_from AND $day_to)
GROUP BY b.event_date;
