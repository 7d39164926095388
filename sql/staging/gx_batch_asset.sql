-- What the batch-level expectation validates: the file's duplicate rate (the mean of the 0/1
-- duplicate flag over its kept rows, computed in summary.sql; NULL when it has none).
SELECT duplicate_rate AS is_duplicate FROM staging.summary
