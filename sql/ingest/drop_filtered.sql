-- Filtered rows leave the batch before validation: they are neither validated nor loaded.
DELETE FROM staging.batch WHERE is_filtered;
