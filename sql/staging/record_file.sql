-- One row of per-file accounting for this run (inside the commit transaction: committed runs only).
INSERT INTO ops.ingest_files BY NAME
SELECT $run_id AS run_id, $source_file AS source_file, $path AS path, $profile AS profile, $day_from AS day, $day_to AS day_to,
       $sha256 AS sha256, $size_bytes AS size_bytes, $rows_read AS rows_read, $rows_accepted AS rows_accepted,
       $rows_quarantined AS rows_quarantined, $rows_duplicate AS rows_duplicate,
       $rows_other_days AS rows_other_days, $min_ts::TIMESTAMP AS min_ts, $max_ts::TIMESTAMP AS max_ts,
       now()::TIMESTAMP AS ingested_at, $file_id AS file_id, $link_path AS link_path,
       $rows_filtered AS rows_filtered, $rows_blank AS rows_blank, $flags AS flags;
