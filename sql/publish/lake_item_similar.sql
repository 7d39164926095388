-- One night of the published recs.item_similar as one Parquet file. run_date is left out of the file: it
-- is the Hive partition (lake/recs/item_similar/run_date=YYYY-MM-DD/), as DuckDB's own PARTITION_BY does.
COPY (
    SELECT model, model_version, item_id, rank, similar_item_id, score
    FROM pub.recs.item_similar
    WHERE run_date = $run_date  -- pub.recs.item_similar is sorted, and DuckDB keeps that order here
) TO $path (FORMAT parquet, COMPRESSION zstd);
