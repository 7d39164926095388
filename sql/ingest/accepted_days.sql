-- Days this file contributes to (same filter as write_lake.sql).
SELECT DISTINCT b.event_date
FROM staging.batch AS b
ANTI JOIN staging.rejects AS r USING (source_row)
WHERE NOT b.is_duplicate AND ($day_from IS NULL OR b.event_date BETWEEN $day_from AND $day_to)
ORDER BY 1;
