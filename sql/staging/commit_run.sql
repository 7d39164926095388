-- Make one ingest run visible in the working database, in one transaction with tasks/ingest/commit.py's other
-- statements: drop what this run replaces, then insert the scratch files' accepted rows.
-- $day_from set: the days [$day_from, $day_to] are replaced whole. NULL: the earlier rows of these
-- landing files ($file_ids: identity = resolved path, never the bare name) are.
DELETE FROM raw.clicks
WHERE CASE WHEN $day_from IS NOT NULL THEN event_date BETWEEN $day_from AND $day_to
           ELSE list_contains($file_ids, file_id) END;
