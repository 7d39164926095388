-- This file's accepted rows as Hive-partitioned Parquet under a temp folder; ingest then renames
-- each partition's file into lake/clicks/event_date=D/ (a rename is atomic, a COPY is not).
COPY (SELECT * EXCLUDE (event_date), event_date FROM staging.accepted)
TO $out (FORMAT parquet, PARTITION_BY (event_date), COMPRESSION zstd, ROW_GROUP_SIZE 1000000);
