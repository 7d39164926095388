-- The attached scratch file's one-row accounting and check counts (summary.sql), for the records
-- and the GX cross-check.
SELECT * FROM scratch.staging.summary;
