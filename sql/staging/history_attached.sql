-- Daily counts from raw.clicks in the attached warehouse `history`, only over the window the
-- batch's accepted days look back on (event_date is the partition key, so the range filter prunes).
INSERT INTO staging.validate_history
SELECT event_date, count(*)
FROM history.raw.clicks
WHERE event_date >= (SELECT min(event_date) FROM staging.validate_days) - CAST($trailing_days AS INTEGER)
  AND event_date < (SELECT max(event_date) FROM staging.validate_days)
GROUP BY event_date;
