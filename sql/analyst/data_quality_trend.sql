-- Is the input getting better or worse? Per day: click volume, quarantined rows, validation failures.
--
-- Run:
--   clickrec query --file sql/analyst/data_quality_trend.sql --var days=30
--   duckdb -readonly warehouse/published.duckdb -f sql/analyst/data_quality_trend.sql
-- Parameters: days (default 14: the newest 14 days that have any figure).
-- Days mean different things per source, all on one calendar:
--   volume:      ops.daily_volume.event_date (day the clicks happened, accepted rows only);
--   quarantine:  ops.quarantine_summary.day (event day when the bad row's timestamp parses, else the day
--                it was quarantined);
--   validation:  ops.validation_summary.validated_on (day the pipeline validated the batch).
-- quarantine_rate = quarantined / (accepted + quarantined) of that day.
SET VARIABLE days = coalesce(getvariable('days')::INTEGER, 14);
WITH quarantined AS (
    SELECT day, sum(rows) AS quarantined, string_agg(DISTINCT check_name, ', ') AS quarantine_checks
    FROM ops.quarantine_summary
    GROUP BY day
),
validation AS (
    SELECT
        validated_on AS day,
        count(*)                         AS batches,
        sum(expectations)                AS expectations,
        sum(failed)                      AS expectations_failed,
        string_agg(DISTINCT failed_expectations, '; ') AS failed_expectations
    FROM ops.validation_summary
    GROUP BY validated_on
),
days AS (
    SELECT event_date AS day FROM ops.daily_volume
    UNION SELECT day FROM quarantined
    UNION SELECT day FROM validation
)
SELECT
    d.day,
    v.rows                                AS accepted_rows,
    v.sessions,
    v.users,
    v.items,
    coalesce(q.quarantined, 0)            AS quarantined_rows,
    round(coalesce(q.quarantined, 0) / nullif(coalesce(v.rows, 0) + coalesce(q.quarantined, 0), 0), 4)
                                          AS quarantine_rate,
    q.quarantine_checks,
    coalesce(val.batches, 0)              AS validated_batches,
    coalesce(val.expectations_failed, 0)  AS expectations_failed,
    val.failed_expectations
FROM days d
LEFT JOIN ops.daily_volume v ON v.event_date = d.day
LEFT JOIN quarantined q ON q.day = d.day
LEFT JOIN validation val ON val.day = d.day
ORDER BY d.day DESC
LIMIT getvariable('days');
