-- Operations records of the flows (the ops schema and ops.ingest_* are in sql/warehouse/schema.sql).
-- Idempotent: run on every read-write open.

-- One row per failed flow run, written by the flows' on-failure hook (tasks/common/failures.py);
-- `clickrec status` and the night's report show them.
CREATE TABLE IF NOT EXISTS ops.flow_failures (
    flow_run_id  VARCHAR NOT NULL,     -- Prefect's flow run id
    flow         VARCHAR NOT NULL,     -- flow name: nightly, backfill, ingest, train-night, ...
    run_name     VARCHAR,              -- Prefect's flow run name, e.g. nightly-2014-04-07
    run_date     DATE,                 -- the night it was for (NULL for runs without one)
    state        VARCHAR NOT NULL,     -- Prefect's final state: Failed, Crashed, TimedOut
    error        VARCHAR NOT NULL,     -- the first line of the error
    failed_at    TIMESTAMP NOT NULL
);
