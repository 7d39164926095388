SELECT * FROM staging.validate_day_counts
