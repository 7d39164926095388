-- What the batch-level expectation validates: each file's duplicate rate over its kept rows. A file
-- with no kept rows has no rate; -1 puts it outside every bound, so it fails like a rate too high.
SELECT coalesce(duplicate_rate, -1.0) AS duplicate_rate FROM staging.run_batches
