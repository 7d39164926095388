-- The run's validation database (validate.py): what GX validates once for all of a run's staged
-- files. Its tables have one part per file (file_index: the file's place in the run).
CREATE SCHEMA IF NOT EXISTS staging;
