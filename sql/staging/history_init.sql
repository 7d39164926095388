-- Daily row counts of earlier ingests, for the day-volume check; stays empty without history.
CREATE OR REPLACE TABLE staging.validate_history (event_date DATE, row_count BIGINT);
