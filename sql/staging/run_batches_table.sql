-- The batch-level asset of the run: one row per file, its kept rows and duplicate rate (run_batch_add.sql).
CREATE OR REPLACE TABLE staging.run_batches (file_index INTEGER, kept BIGINT, duplicate_rate DOUBLE);
