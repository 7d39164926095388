-- Analyst example 3: data volume per day (events, sessions, users, items) in the warehouse.
SELECT * FROM ops.daily_volume ORDER BY 1 DESC LIMIT 8;
