-- The run is committed: raw.clicks holds it; its lake files are pending until published.
INSERT INTO ops.ingest_runs (run_id, state, committed_at) VALUES ($run_id, 'committed', now()::TIMESTAMP);
