-- One night of one kind of the published recommendations as one Parquet file. kind and run_date are
-- left out of the file: they are the path (lake/recs/<kind>/run_date=YYYY-MM-DD/), as Hive partitions.
COPY (
    SELECT model, model_version, entity_id, rank, item_id, score
    FROM pub.recs.recommendations
    WHERE kind = $kind AND run_date = $run_date
    ORDER BY model, entity_id, rank
) TO $path (FORMAT parquet, COMPRESSION zstd);
