-- Make one ingest run visible in the working database, in one transaction with ingest.py's other
-- statements: drop what this run replaces, then insert the scratch files' accepted rows.
-- $day set: the day is replaced whole. $day NULL: these source files' earlier rows are replaced.
DELETE FROM raw.clicks
WHERE CASE WHEN $day IS NOT NULL THEN event_date = $day ELSE list_contains($source_files, source_file) END;
