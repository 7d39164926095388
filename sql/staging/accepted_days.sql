-- Days this file contributes to (the days write_lake.sql writes), from the grouped day table.
SELECT event_date FROM staging.validate_days ORDER BY 1;
