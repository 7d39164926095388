-- The newest published night over all kinds: retention counts back from it (not from today), so a
-- paused pipeline does not empty the analysts' tables.
SELECT max(run_date) AS newest FROM recs.recommendations;
