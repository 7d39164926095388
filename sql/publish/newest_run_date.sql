-- The newest published night over all kinds: retention counts back from it (not from today), so a
-- paused pipeline does not empty the analysts' tables.
SELECT max(run_date) AS newest
FROM (
    SELECT max(run_date) AS run_date FROM recs.user_topn
    UNION ALL SELECT max(run_date) FROM recs.session_next
    UNION ALL SELECT max(run_date) FROM recs.item_similar
);
