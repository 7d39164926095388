-- In the published file: for each model, its rows of the most recent night it was published.
-- (A model the gate rejected tonight keeps showing its last accepted night.) The latest nights come from
-- the small recs.nights table, so a filter on session_id still prunes row groups of recs.session_next.
CREATE OR REPLACE VIEW recs.latest_session_next AS
SELECT t.*
FROM recs.session_next t
JOIN (
    SELECT model, max(run_date) AS run_date
    FROM recs.nights
    WHERE table_name = 'session_next'
    GROUP BY model
) latest USING (model, run_date);
