SELECT CAST(coalesce(is_duplicate, false) AS DOUBLE) AS is_duplicate FROM staging.batch
