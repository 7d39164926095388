-- Runs whose commit succeeded but whose lake files are not all in place (a crash or a failed rename).
SELECT run_id FROM ops.ingest_runs WHERE state = 'committed' ORDER BY committed_at, run_id;
