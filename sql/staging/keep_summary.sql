-- The file's accounting and check counts (summary.sql), kept for the run's validation.
CREATE TABLE scratch.staging.summary AS SELECT * FROM staging.summary;
