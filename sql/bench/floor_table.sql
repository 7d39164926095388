-- The benchmark's floor, step 3 of 3: the Parquet rows loaded into a table of a compressed
-- database, as the commit loads raw.clicks from the files it publishes.
CREATE TABLE floor_raw AS SELECT * FROM read_parquet($out);
