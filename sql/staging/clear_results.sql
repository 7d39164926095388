-- A retried validation of the same run and batch replaces its earlier result rows.
DELETE FROM ops.validation_results WHERE run_id = $run_id AND batch = $batch;
