-- One night of the published recs.user_topn as one Parquet file. run_date is left out of the file: it
-- is the Hive partition (lake/recs/user_topn/run_date=YYYY-MM-DD/), as DuckDB's own PARTITION_BY does.
COPY (
    SELECT model, model_version, user_id, rank, item_id, score
    FROM pub.recs.user_topn
    WHERE run_date = $run_date  -- pub.recs.user_topn is sorted, and DuckDB keeps that order here
) TO $path (FORMAT parquet, COMPRESSION zstd);
