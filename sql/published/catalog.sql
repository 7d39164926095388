-- Every table and view of the open database with its columns, types and comments, one row a column
-- (what `clickrec tables` prints; tests hold the column dictionary against it).
WITH objects AS (
    SELECT schema_name, table_name AS name, 'table' AS kind, comment
    FROM duckdb_tables()
    WHERE database_name = current_database()
    UNION ALL
    SELECT schema_name, view_name, 'view', comment
    FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal
)
SELECT
    o.schema_name || '.' || o.name AS table_name,
    o.kind,
    o.comment                      AS table_description,
    c.column_name,
    c.data_type,
    c.is_nullable,
    c.comment                      AS column_description
FROM objects o
JOIN duckdb_columns() c
  ON c.database_name = current_database() AND c.schema_name = o.schema_name AND c.table_name = o.name
ORDER BY table_name, c.column_index;
