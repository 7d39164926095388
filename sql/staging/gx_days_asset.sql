-- What the day-volume expectation validates: one row per accepted day with its ratio to history.
SELECT * FROM staging.validate_day_counts
