-- One staged file's accepted rows per day (batch_days.sql), for the day-volume check.
INSERT INTO staging.validate_days SELECT $file_index, event_date, row_count FROM scratch.staging.validate_days;
