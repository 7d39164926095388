-- In the published file: what the user_topn champion (recs.champions) recommends to each user.
CREATE OR REPLACE VIEW recs.champion_for_users AS
SELECT r.entity_id AS user_id, r.rank, r.item_id, r.score, r.model, r.model_version, r.run_date
FROM recs.recommendations r
JOIN recs.champions c USING (kind, model, model_version, run_date)
WHERE r.kind = 'user_topn';
