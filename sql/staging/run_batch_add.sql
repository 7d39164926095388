-- One staged file's row of the batch-level asset: its kept rows and duplicate rate (summary.sql).
INSERT INTO staging.run_batches SELECT $file_index, kept, duplicate_rate FROM scratch.staging.summary;
