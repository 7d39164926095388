-- The benchmark's baseline: DuckDB reading the same CSV files straight into one Parquet file,
-- with no typing, validation, lineage or partitioning.
COPY (SELECT * FROM read_csv($files, header = false, all_varchar = true)) TO $out (FORMAT parquet, COMPRESSION zstd);
