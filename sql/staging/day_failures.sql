-- Days outside the allowed volume ratio, for the failure message (the same bounds GX checked), and
-- the number of days checked and of days that had history to compare with.
SELECT event_date, row_count, trailing_mean, ratio, history_days
FROM staging.validate_day_counts
WHERE ratio IS NOT NULL AND NOT (ratio >= $min_ratio AND ratio <= $max_ratio)
ORDER BY event_date;
