-- Size of the batch: rows read, duplicates, rows checked row by row, days without history.
SELECT
    (SELECT count(*) FROM staging.batch) AS rows_read,
    (SELECT count(*) FROM staging.batch WHERE is_duplicate) AS rows_duplicate,
    (SELECT count(*) FROM staging.validate_rows) AS rows_checked,
    (SELECT count(*) FROM staging.rejects) AS rows_rejected;
