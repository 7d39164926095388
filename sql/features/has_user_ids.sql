-- Does the window carry logged-in users? (recs.user_topn is only produced when it does.)
SELECT count(user_id) > 0 FROM raw.clicks WHERE event_date BETWEEN $start AND $end;
