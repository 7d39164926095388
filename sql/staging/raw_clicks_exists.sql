-- Whether database $database (this file, or the attached `history`) has raw.clicks yet.
SELECT count(*) > 0
FROM duckdb_tables()
WHERE database_name = $database AND schema_name = 'raw' AND table_name = 'clicks';
