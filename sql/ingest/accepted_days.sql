-- Days this file contributes to (same filter as write_lake.sql).
SELECT DISTINCT b.event_date
FROM staging.batch AS b
ANTI JOIN staging.rejects AS r USING (source_row)
WHERE NOT b.is_duplicate AND ($day IS NULL OR b.event_date = $day)
ORDER BY 1;
