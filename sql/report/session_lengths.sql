-- Session-length histogram of the latest feature build; lengths above $cap share the last bucket.
SELECT least(length, $cap) AS length, count(*) AS sessions
FROM features.sessions
GROUP BY ALL
ORDER BY length;
