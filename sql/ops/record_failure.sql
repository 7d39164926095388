-- A failed flow run, recorded by the flows' on-failure hook.
INSERT INTO ops.flow_failures (flow_run_id, flow, run_name, run_date, state, error, failed_at)
VALUES ($flow_run_id, $flow, $run_name, $run_date, $state, $error, now()::TIMESTAMP);
