-- Which tables exist: the report skips (and says so) sections whose layer has not been built yet.
SELECT table_schema || '.' || table_name AS name
FROM information_schema.tables
WHERE table_catalog = current_database();
