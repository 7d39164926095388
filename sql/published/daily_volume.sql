-- Click volume per event day, so analysts never need raw.clicks (which stays in the working db).
CREATE TABLE pub.ops.daily_volume AS
SELECT
    event_date,
    count(*)                   AS rows,
    count(DISTINCT session_id) AS sessions,
    count(DISTINCT user_id)    AS users,
    count(DISTINCT item_id)    AS items
FROM raw.clicks
GROUP BY event_date
ORDER BY event_date;
