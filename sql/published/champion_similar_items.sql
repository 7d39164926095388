-- In the published file: the item_similar champion's (recs.champions) most similar items per item.
CREATE OR REPLACE VIEW recs.champion_similar_items AS
SELECT r.entity_id AS item_id, r.rank, r.item_id AS similar_item_id, r.score, r.model, r.model_version, r.run_date
FROM recs.recommendations r
JOIN recs.champions c USING (kind, model, model_version, run_date)
WHERE r.kind = 'item_similar';
