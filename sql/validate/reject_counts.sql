-- Rows failing each check, counted per check (not first-wins): what GX's unexpected_count for the
-- matching expectation must equal. Column names are the check keys used in tasks/validate.py.
SELECT
    count(*) FILTER (WHERE null_session_id) AS null_session_id,
    count(*) FILTER (WHERE null_user_id) AS null_user_id,
    count(*) FILTER (WHERE null_item_id) AS null_item_id,
    count(*) FILTER (WHERE null_event_type) AS null_event_type,
    count(*) FILTER (WHERE null_category) AS null_category,
    count(*) FILTER (WHERE null_ts) AS null_ts,
    count(*) FILTER (WHERE range_ts) AS range_ts,
    count(*) FILTER (WHERE regex_session_id) AS regex_session_id,
    count(*) FILTER (WHERE regex_user_id) AS regex_user_id,
    count(*) FILTER (WHERE regex_item_id) AS regex_item_id,
    count(*) FILTER (WHERE set_event_type) AS set_event_type
FROM staging.rejects;
