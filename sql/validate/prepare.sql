-- The rows every row-level check sees: one view shared by the GX suite and the SQL router, so
-- both count over exactly the same domain. Duplicates are dropped and counted by ingest, never
-- quarantined, so they are not validated row by row (their first occurrence is).
CREATE OR REPLACE VIEW staging.validate_rows AS
SELECT *
FROM staging.batch
WHERE is_duplicate IS NOT TRUE;
