-- In the published file: the session_next champion's (recs.champions) next items for each session.
CREATE OR REPLACE VIEW recs.champion_for_sessions AS
SELECT r.entity_id AS session_id, r.rank, r.item_id, r.score, r.model, r.model_version, r.run_date
FROM recs.recommendations r
JOIN recs.champions c USING (kind, model, model_version, run_date)
WHERE r.kind = 'session_next';
