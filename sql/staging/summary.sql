-- One file's accounting and check counts in one aggregate over staging.batch: every line lands in
-- exactly one bucket, first match wins: malformed line (quarantined), blank, filtered, duplicate,
-- rejected by a row-level check (quarantined), outside the run's days, accepted. The per-check
-- counts (not first-wins) are over the checked rows (kept, not duplicate): what the GX suite's
-- unexpected_count for each check must equal. null_keys: rows (kept, duplicates included) whose
-- item id or session key is NULL, for the guard rail. duplicate_rate: over kept rows (NULL if none).
CREATE OR REPLACE TABLE staging.summary AS
WITH b AS (
    SELECT b.*, d.source_row IS NOT NULL AS is_duplicate,
           b.line_reason IS NULL AND NOT b.is_filtered AS kept
    FROM staging.batch AS b
    LEFT JOIN staging.duplicates AS d USING (source_row)
),
c AS (
    SELECT *, kept AND NOT is_duplicate AS checked FROM b
)
SELECT
    count(*) AS rows_staged,
    count(*) FILTER (WHERE line_reason IS NOT NULL AND line_reason <> 'blank line') AS bad_lines,
    count(*) FILTER (WHERE line_reason = 'blank line') AS blank_lines,
    count(*) FILTER (WHERE line_reason IS NULL) AS good_lines,
    count(*) FILTER (WHERE is_filtered) AS filtered,
    count(*) FILTER (WHERE kept) AS kept,
    count(*) FILTER (WHERE is_duplicate) AS duplicates,
    count(*) FILTER (WHERE checked) AS checked,
    count(*) FILTER (WHERE checked AND rejected) AS rejected,
    count(*) FILTER (WHERE checked AND NOT rejected AND $day_from IS NOT NULL
                       AND event_date NOT BETWEEN $day_from AND $day_to) AS other_days,
    count(*) FILTER (WHERE checked AND NOT rejected
                       AND ($day_from IS NULL OR event_date BETWEEN $day_from AND $day_to)) AS accepted,
    count(*) FILTER (WHERE kept AND (item_id IS NULL
                       OR CASE WHEN $session_key THEN session_id IS NULL ELSE user_id IS NULL END)) AS null_keys,
    min(ts) FILTER (WHERE checked AND NOT rejected) AS min_ts,
    max(ts) FILTER (WHERE checked AND NOT rejected) AS max_ts,
    CAST(count(*) FILTER (WHERE is_duplicate) AS DOUBLE) / nullif(count(*) FILTER (WHERE kept), 0) AS duplicate_rate,
    count(*) FILTER (WHERE checked AND null_session_id) AS null_session_id,
    count(*) FILTER (WHERE checked AND null_user_id) AS null_user_id,
    count(*) FILTER (WHERE checked AND null_item_id) AS null_item_id,
    count(*) FILTER (WHERE checked AND null_event_type) AS null_event_type,
    count(*) FILTER (WHERE checked AND null_category) AS null_category,
    count(*) FILTER (WHERE checked AND null_ts) AS null_ts,
    count(*) FILTER (WHERE checked AND range_ts) AS range_ts,
    count(*) FILTER (WHERE checked AND regex_session_id) AS regex_session_id,
    count(*) FILTER (WHERE checked AND regex_user_id) AS regex_user_id,
    count(*) FILTER (WHERE checked AND regex_item_id) AS regex_item_id,
    count(*) FILTER (WHERE checked AND set_event_type) AS set_event_type
FROM c;
