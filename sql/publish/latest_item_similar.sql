-- In the published file: for each model, its rows of the most recent night it was published.
-- (A model the gate rejected tonight keeps showing its last accepted night.) The latest nights come from
-- the small recs.nights table, so a filter on item_id still prunes row groups of recs.item_similar.
CREATE OR REPLACE VIEW recs.latest_item_similar AS
SELECT t.*
FROM recs.item_similar t
JOIN (
    SELECT model, max(run_date) AS run_date
    FROM recs.nights
    WHERE table_name = 'item_similar'
    GROUP BY model
) latest USING (model, run_date);
