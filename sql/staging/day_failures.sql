-- Days outside the allowed volume ratio, per file, for the failure messages (the same bounds GX
-- checked).
SELECT file_index, event_date, row_count, trailing_mean, ratio, history_days
FROM staging.validate_day_counts
WHERE ratio IS NOT NULL AND NOT (ratio >= $min_ratio AND ratio <= $max_ratio)
ORDER BY file_index, event_date;
