-- One night of the published recs.session_next as one Parquet file. run_date is left out of the file: it
-- is the Hive partition (lake/recs/session_next/run_date=YYYY-MM-DD/), as DuckDB's own PARTITION_BY does.
COPY (
    SELECT model, model_version, session_id, rank, item_id, score
    FROM pub.recs.session_next
    WHERE run_date = $run_date  -- pub.recs.session_next is sorted, and DuckDB keeps that order here
) TO $path (FORMAT parquet, COMPRESSION zstd);
