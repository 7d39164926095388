-- Keep only the last $keep_nights nights of candidates (counted back from the newest): older ones
-- were either promoted into recs.user_topn or rejected by the gate, and are not needed again.
DELETE FROM recs.candidate_user_topn
WHERE run_date <= (SELECT max(run_date) FROM recs.candidate_user_topn) - CAST($keep_nights AS INTEGER);
