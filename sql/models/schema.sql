-- Model versions and their evaluation figures (one writer: the nightly flow).
CREATE SCHEMA IF NOT EXISTS models;

CREATE TABLE IF NOT EXISTS models.model_runs (
    run_id          VARCHAR NOT NULL,     -- the nightly/backfill run that trained it
    model           VARCHAR NOT NULL,     -- registry name: gru4rec, narm, neumf, multvae, pop, ...
    version         VARCHAR NOT NULL,     -- unique per (model, trained data, params)
    run_date        DATE NOT NULL,        -- the night D (trained on data up to D-1, tested on D)
    trained_at      TIMESTAMP NOT NULL,
    window_start    DATE,
    window_end      DATE,
    params          VARCHAR,              -- JSON of the config actually used
    device          VARCHAR,
    train_seconds   DOUBLE,
    checkpoint_path VARCHAR,
    warm_start_from VARCHAR,              -- version it was initialised from, if any
    status          VARCHAR NOT NULL,     -- trained | published | rejected | failed
    gate_reason     VARCHAR
);

CREATE TABLE IF NOT EXISTS models.eval_metrics (
    run_id    VARCHAR NOT NULL,
    model     VARCHAR NOT NULL,
    version   VARCHAR NOT NULL,
    run_date  DATE NOT NULL,
    protocol  VARCHAR NOT NULL,           -- P4-session | P4-user | P4-similar
    metric    VARCHAR NOT NULL,           -- HR | MRR | NDCG | COV | n_predictions
    k         INTEGER,
    value     DOUBLE NOT NULL
);
