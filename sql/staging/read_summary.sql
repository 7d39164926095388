-- The file's one-row accounting and check counts (summary.sql), for the report and the GX cross-check.
SELECT * FROM staging.summary;
