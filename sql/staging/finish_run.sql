-- Run $run_id is published: its lake files are in place.
UPDATE ops.ingest_runs SET state = 'published', published_at = now()::TIMESTAMP WHERE run_id = $run_id;
