-- Per file: days checked against history, and how many of them had history to compare with.
SELECT file_index, count(*), count(ratio) FROM staging.validate_day_counts GROUP BY file_index;
