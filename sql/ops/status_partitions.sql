-- Rows per day in raw.clicks, with lineage counts.
SELECT event_date, count(*) AS rows, count(DISTINCT source_file) AS files,
       count(DISTINCT session_id) AS sessions, count(DISTINCT user_id) AS users,
       count(DISTINCT item_id) AS items
FROM raw.clicks
GROUP BY event_date
ORDER BY event_date;
