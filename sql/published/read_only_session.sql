-- An analyst's connection (clickrec query) answers questions about the published file only: no
-- COPY TO, no reading other files, no ATTACH. Once off, DuckDB cannot switch it back on.
SET enable_external_access = false;
