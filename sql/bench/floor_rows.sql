-- The rows the floor loaded (must be the landing files' lines: it did the same work as the pipeline).
SELECT count(*) FROM floor_raw;
