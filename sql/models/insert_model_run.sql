-- One trained model version, status 'trained' until the gate decides (record_model_run removed a retried row first).
INSERT INTO models.model_runs BY NAME
SELECT $run_id AS run_id, $model AS model, $version AS version, $run_date AS run_date,
       now()::TIMESTAMP AS trained_at, $window_start AS window_start, $window_end AS window_end,
       $params AS params, $device AS device, $train_seconds AS train_seconds,
       $checkpoint_path AS checkpoint_path, $warm_start_from AS warm_start_from,
       'trained' AS status, NULL AS gate_reason;
