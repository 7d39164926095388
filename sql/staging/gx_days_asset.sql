-- What the day-volume expectation validates: one row per accepted day of each file, with its ratio to history.
SELECT * FROM staging.validate_day_counts
