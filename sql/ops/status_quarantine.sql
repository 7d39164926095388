-- Quarantined rows by file and reason (the reason text up to its first colon groups like checks).
SELECT source_file, split_part(reason, ':', 1) AS check_name, count(*) AS rows
FROM quarantine.clicks
GROUP BY ALL
ORDER BY rows DESC
LIMIT 50;
