-- Accepted click rows per day over the report window (the night and its trailing days).
SELECT event_date,
       count(*)                   AS rows,
       count(DISTINCT session_id) AS sessions,
       count(user_id)             AS rows_with_user,
       count(DISTINCT item_id)    AS items
FROM raw.clicks
WHERE event_date BETWEEN $start AND $end
GROUP BY event_date
ORDER BY event_date;
