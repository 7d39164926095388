-- Whether the lake manifest has any rows (an older warehouse's lake is registered once).
SELECT count(*) FROM ops.lake_files;
