-- One-time move of the published rows of the per-kind layout into recs.recommendations (the
-- identifiers here are the old layout's fixed table names; this file is the only place they live).
INSERT INTO recs.recommendations BY NAME
WITH user_topn AS (
    SELECT 'user_topn' AS kind, run_date, model, model_version, user_id AS entity_id, rank, item_id, score
    FROM recs.user_topn
),
session_next AS (
    SELECT 'session_next' AS kind, run_date, model, model_version, session_id AS entity_id, rank, item_id, score
    FROM recs.session_next
),
item_similar AS (
    SELECT 'item_similar' AS kind, run_date, model, model_version, item_id AS entity_id, rank,
           similar_item_id AS item_id, score
    FROM recs.item_similar
)
SELECT * FROM user_topn
UNION ALL SELECT * FROM session_next
UNION ALL SELECT * FROM item_similar;
