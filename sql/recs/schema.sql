-- Recommendation outputs in the WORKING database (clickrec.duckdb, schema `recs`). Idempotent.
--
-- Two stages per kind (user_topn, session_next, item_similar):
--   recs.candidate_<kind>  what a model scored tonight, written before the gate decides; replaced per
--                          (run_date, model) and pruned to the last few nights once promoted.
--   recs.<kind>            what analysts get: rows the gate accepted, replaced per (run_date, model) by
--                          promote(). published.duckdb is rebuilt from these every night.
-- Every row carries run_date and model_version; ids are ORIGINAL ids (mapped from the vocabularies
-- in SQL when written), so nothing downstream needs features.* to read them.
-- No PRIMARY KEYs: rows are replaced by (run_date, model) delete-then-insert, where a key index
-- only slows the commit (see sql/features/schema.sql); uniqueness comes from the writer.
CREATE SCHEMA IF NOT EXISTS recs;

CREATE TABLE IF NOT EXISTS recs.candidate_user_topn (
    run_date      DATE NOT NULL,       -- the night D that produced it
    model         VARCHAR NOT NULL,    -- registry name (models.model_runs.model)
    model_version VARCHAR NOT NULL,    -- models.model_runs.version
    user_id       VARCHAR NOT NULL,    -- original user id (or session id for session-entity builds)
    rank          INTEGER NOT NULL,    -- 1 = best, dense 1..k per user
    item_id       VARCHAR NOT NULL,    -- original item id
    score         DOUBLE NOT NULL      -- model score; comparable within one (model_version) only
);

CREATE TABLE IF NOT EXISTS recs.candidate_session_next (
    run_date      DATE NOT NULL,
    model         VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    session_id    VARCHAR NOT NULL,    -- original session id
    rank          INTEGER NOT NULL,
    item_id       VARCHAR NOT NULL,
    score         DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS recs.candidate_item_similar (
    run_date        DATE NOT NULL,
    model           VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    item_id         VARCHAR NOT NULL,  -- the source item
    rank            INTEGER NOT NULL,
    similar_item_id VARCHAR NOT NULL,
    score           DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS recs.user_topn (
    run_date      DATE NOT NULL,
    model         VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    user_id       VARCHAR NOT NULL,
    rank          INTEGER NOT NULL,
    item_id       VARCHAR NOT NULL,
    score         DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS recs.session_next (
    run_date      DATE NOT NULL,
    model         VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    session_id    VARCHAR NOT NULL,
    rank          INTEGER NOT NULL,
    item_id       VARCHAR NOT NULL,
    score         DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS recs.item_similar (
    run_date        DATE NOT NULL,
    model           VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    item_id         VARCHAR NOT NULL,
    rank            INTEGER NOT NULL,
    similar_item_id VARCHAR NOT NULL,
    score           DOUBLE NOT NULL
);
