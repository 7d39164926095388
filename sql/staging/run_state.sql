-- Whether run $run_id was committed already (a retried commit must not commit twice), and its state.
SELECT state FROM ops.ingest_runs WHERE run_id = $run_id;
