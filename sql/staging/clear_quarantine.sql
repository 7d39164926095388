-- A re-ingest of a landing file replaces all of that file's quarantine rows: a line fixed since the
-- last run leaves quarantine, so quarantine holds only what the current version of each file lacks.
DELETE FROM quarantine.clicks WHERE list_contains($file_ids, file_id);
