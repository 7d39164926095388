-- Row router: every non-duplicate row failing a row-level check, with one flag per check and the
-- reason of the FIRST failing check. Each flag is the exact predicate GX evaluates for the matching
-- expectation (GX ignores NULLs in between/regex/in-set checks, hence the IS NOT NULL guards;
-- `~` is the operator GX emits for DuckDB's PostgreSQL-derived dialect: a regex *search*).
-- validate_batch cross-checks count(flag) against GX's unexpected_count for every expectation.
-- Parameters: $required (VARCHAR[] of columns that must not be NULL), $min_ts, $max_ts,
-- $id_regex, $event_types (VARCHAR[]).
CREATE OR REPLACE TABLE staging.rejects AS
WITH flagged AS (
    SELECT
        source_file, source_row,
        raw_session_id, raw_user_id, raw_item_id, raw_event_type, raw_category, raw_ts,
        session_id, user_id, item_id, event_type, ts,
        list_contains($required, 'session_id') AND session_id IS NULL AS null_session_id,
        list_contains($required, 'user_id') AND user_id IS NULL AS null_user_id,
        list_contains($required, 'item_id') AND item_id IS NULL AS null_item_id,
        list_contains($required, 'event_type') AND event_type IS NULL AS null_event_type,
        list_contains($required, 'category') AND category IS NULL AS null_category,
        list_contains($required, 'ts') AND ts IS NULL AS null_ts,
        ts IS NOT NULL AND NOT (ts >= $min_ts AND ts <= $max_ts) AS range_ts,
        session_id IS NOT NULL AND NOT (session_id ~ $id_regex) AS regex_session_id,
        user_id IS NOT NULL AND NOT (user_id ~ $id_regex) AS regex_user_id,
        item_id IS NOT NULL AND NOT (item_id ~ $id_regex) AS regex_item_id,
        event_type IS NOT NULL AND NOT list_contains($event_types, event_type) AS set_event_type
    FROM staging.validate_rows
)
SELECT
    source_file, source_row,
    CASE
        WHEN null_session_id THEN 'expect_column_values_to_not_be_null(session_id): missing session_id'
        WHEN null_user_id THEN 'expect_column_values_to_not_be_null(user_id): missing user_id'
        WHEN null_item_id THEN 'expect_column_values_to_not_be_null(item_id): missing item_id'
        WHEN null_event_type THEN 'expect_column_values_to_not_be_null(event_type): missing event_type'
        WHEN null_category THEN 'expect_column_values_to_not_be_null(category): missing category'
        WHEN null_ts AND coalesce(trim(raw_ts), '') = '' THEN 'expect_column_values_to_not_be_null(ts): missing timestamp'
        WHEN null_ts THEN 'expect_column_values_to_not_be_null(ts): unparseable timestamp '
                          || '''' || left(regexp_replace(raw_ts, '[\x00-\x1F\x7F]', '?', 'g'), 80) || ''''
        WHEN range_ts THEN 'expect_column_values_to_be_between(ts): ' || strftime(ts, '%Y-%m-%d %H:%M:%S')
                           || ' outside [' || strftime($min_ts::TIMESTAMP, '%Y-%m-%d %H:%M:%S') || ', '
                           || strftime($max_ts::TIMESTAMP, '%Y-%m-%d %H:%M:%S') || ']'
        WHEN regex_session_id THEN 'expect_column_values_to_match_regex(session_id): invalid id of length '
                                   || length(session_id) || ' (empty, control character or too long)'
        WHEN regex_user_id THEN 'expect_column_values_to_match_regex(user_id): invalid id of length '
                                || length(user_id) || ' (empty, control character or too long)'
        WHEN regex_item_id THEN 'expect_column_values_to_match_regex(item_id): invalid id of length '
                                || length(item_id) || ' (empty, control character or too long)'
        WHEN set_event_type THEN 'expect_column_values_to_be_in_set(event_type): unknown event_type '
                                 || '''' || left(regexp_replace(event_type, '[\x00-\x1F\x7F]', '?', 'g'), 80) || ''''
    END AS reason,
    raw_session_id, raw_user_id, raw_item_id, raw_event_type, raw_category, raw_ts,
    null_session_id, null_user_id, null_item_id, null_event_type, null_category, null_ts,
    range_ts, regex_session_id, regex_user_id, regex_item_id, set_event_type
FROM flagged
WHERE null_session_id OR null_user_id OR null_item_id OR null_event_type OR null_category OR null_ts
   OR range_ts OR regex_session_id OR regex_user_id OR regex_item_id OR set_event_type;
