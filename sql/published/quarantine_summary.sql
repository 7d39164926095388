-- Quarantined rows per day, file and check. `day` is the event day when the raw timestamp parses
-- (so it lines up with ops.daily_volume.event_date), else the day the row was quarantined.
-- check_name is the reason up to its first colon (the check; the rest is per-row detail).
CREATE TABLE pub.ops.quarantine_summary AS
SELECT
    coalesce(CAST(TRY_CAST(raw_ts AS TIMESTAMP) AS DATE), CAST(quarantined_at AS DATE)) AS day,
    source_file,
    split_part(reason, ':', 1) AS check_name,
    count(*)                   AS rows
FROM quarantine.clicks
GROUP BY ALL
ORDER BY day, source_file, check_name;
