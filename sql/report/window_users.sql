-- Whether the training window carries user ids at all (no ids: user models have nobody to serve).
SELECT count(*) AS events, count(user_id) AS events_with_user, count(DISTINCT user_id) AS users
FROM raw.clicks
WHERE event_date BETWEEN $start AND $end;
