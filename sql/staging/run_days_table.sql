-- Every file's accepted rows per day (run_days_add.sql), for the day-volume check (day_counts.sql).
CREATE OR REPLACE TABLE staging.validate_days (file_index INTEGER, event_date DATE, row_count BIGINT);
