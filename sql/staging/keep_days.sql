-- The file's accepted rows per day (batch_days.sql), kept for the run's day-volume check.
CREATE TABLE scratch.staging.validate_days AS SELECT * FROM staging.validate_days;
