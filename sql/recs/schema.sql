-- Recommendation outputs in the WORKING database (clickrec.duckdb, schema `recs`). Idempotent.
--
-- One table per stage, every kind in it (kind: user_topn | session_next | item_similar):
--   recs.candidates       what a model scored tonight, written before the gate decides; replaced per
--                         (kind, run_date, model) and pruned to the last few nights once promoted.
--   recs.recommendations  what analysts get: rows the gate accepted, replaced per (run_date, model) by
--                         promote(). published.duckdb is rebuilt from these every night.
-- entity_id is what the row recommends FOR: a user id (user_topn; on session sources, whose users are
-- their sessions, a session id), a session id (session_next) or the source item (item_similar).
-- Ids are ORIGINAL ids (mapped from the vocabularies in SQL when written), so nothing downstream needs
-- features.* to read them. Columns are described in sql/recs/columns.yaml.
-- No PRIMARY KEYs: rows are replaced by delete-then-insert, where a key index only slows the commit
-- (see sql/features/schema.sql); uniqueness per (kind, run_date, model, entity_id, rank) comes from the writer.
CREATE SCHEMA IF NOT EXISTS recs;

CREATE TABLE IF NOT EXISTS recs.candidates (
    kind          VARCHAR NOT NULL,
    run_date      DATE NOT NULL,
    model         VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    entity_id     VARCHAR NOT NULL,
    rank          INTEGER NOT NULL,
    item_id       VARCHAR NOT NULL,
    score         DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS recs.recommendations (
    kind          VARCHAR NOT NULL,
    run_date      DATE NOT NULL,
    model         VARCHAR NOT NULL,
    model_version VARCHAR NOT NULL,
    entity_id     VARCHAR NOT NULL,
    rank          INTEGER NOT NULL,
    item_id       VARCHAR NOT NULL,
    score         DOUBLE NOT NULL
);
