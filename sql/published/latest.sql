-- In the published file: for each kind and model, its rows of the most recent night it was published
-- (a model the gate rejected tonight keeps showing its last accepted night). The latest nights come
-- from the small recs.nights table, so a filter on entity_id still prunes row groups.
CREATE OR REPLACE VIEW recs.latest AS
WITH latest_nights AS (
    SELECT kind, model, max(run_date) AS run_date
    FROM recs.nights
    GROUP BY kind, model
)
SELECT r.kind, r.run_date, r.model, r.model_version, r.entity_id, r.rank, r.item_id, r.score
FROM recs.recommendations r
JOIN latest_nights USING (kind, model, run_date);
