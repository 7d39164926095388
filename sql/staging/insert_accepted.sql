-- Append the run's accepted rows to raw.clicks from the Parquet files it is about to publish,
-- so the table and the lake hold exactly the same rows.
INSERT INTO raw.clicks BY NAME
SELECT * FROM read_parquet($files, hive_partitioning = true, hive_types = {'event_date': DATE});
