-- Same as history_local.sql, reading raw.clicks from the attached warehouse `history`.
INSERT INTO staging.validate_history
SELECT event_date, count(*)
FROM history.raw.clicks
WHERE event_date >= (SELECT min(event_date) FROM staging.validate_days) - CAST($trailing_days AS INTEGER)
  AND event_date < (SELECT max(event_date) FROM staging.validate_days)
GROUP BY event_date;
