-- Same as history_attached.sql, reading raw.clicks in this database (no separate warehouse given).
INSERT INTO staging.validate_history
SELECT event_date, count(*)
FROM raw.clicks
WHERE event_date >= (SELECT min(event_date) FROM staging.validate_days) - CAST($trailing_days AS INTEGER)
  AND event_date < (SELECT max(event_date) FROM staging.validate_days)
GROUP BY event_date;
