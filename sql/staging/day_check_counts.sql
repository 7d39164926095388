-- Days checked against history, and how many of them had history to compare with.
SELECT count(*), count(ratio) FROM staging.validate_day_counts;
