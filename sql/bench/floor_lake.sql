-- The benchmark's floor, step 2 of 3: the staged rows written once as Parquet, as the lake must be.
COPY (SELECT * FROM floor_stage) TO $out (FORMAT parquet, COMPRESSION zstd);
