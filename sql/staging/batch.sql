-- staging.batch (created empty by batch_table.sql): the one pass over a landing file, appended one
-- chunk of lines at a time. Every data line becomes one row, typed while it is read and checked in
-- the same pass; no all-text copy of the file is kept. Per row:
--   line_reason   set when the line itself is unusable ('blank line' is counted apart, not quarantined)
--   is_filtered   an event type the profile does not keep: counted, never validated or loaded
--   <check> flags one BOOLEAN per row-level check (never NULL; false for lines that are not checked).
--                 The Great Expectations suite validates these columns as a whole and the quarantine
--                 router reads the same columns: both see one definition of each check.
--   reason        the FIRST failing check, in words, and the raw_* text as read (rejected rows only)
-- Typing parameters: tasks.common.profiles.typed_batch_params(profile). Nulls: a field's raw text in
-- $null_<field> (the profile's null_values for that field, always holding '') is NULL: a NULL user_id
-- is an anonymous session, never a user called 'NA'. Event types: NULL -> $default_event_type, then
-- renamed ($rename_from[i] -> $rename_to[i]); the keep-list ($keep_types, empty = keep all) and the
-- weights ($weight_types[i] -> $weight_values[i], others $default_weight) use the renamed name.
-- Timestamps: ISO-8601 with an offset/Z is read as that instant; naive text in the profile's zone;
-- Unix seconds/milliseconds are UTC. With an offset column ($has_offset) the instant is that
-- timestamp (a date reads as its midnight) plus ts_offset * $offset_us microseconds; raw_ts then
-- shows both parts ('2016-05-09 + 526309 ms'). Unparseable or out-of-range (either part) -> NULL,
-- which the not-null check on ts then rejects with the raw text.
-- Check parameters (tasks.ingest.validate.ValidationRules): $required (columns that must not be
-- NULL), $min_ts, $max_ts, $event_types, and the id rule as its two parts: 1..$id_max_chars
-- characters, none of them in the class $id_forbidden (the rule's regex ^[^...]{1,N}$ is the same
-- test; a search for one forbidden character costs a third of the anchored match, measured).
INSERT INTO staging.batch BY NAME
WITH nulled AS (
    SELECT
        source_row, line_reason, raw_line,
        session_id AS raw_session_id,
        user_id AS raw_user_id,
        item_id AS raw_item_id,
        event_type AS raw_event_type,
        category AS raw_category,
        ts AS raw_ts_part,
        ts_offset AS raw_ts_offset,
        CASE WHEN list_contains(CAST($null_session_id AS VARCHAR[]), session_id) THEN NULL ELSE session_id END AS session_id,
        CASE WHEN list_contains(CAST($null_user_id AS VARCHAR[]), user_id) THEN NULL ELSE user_id END AS user_id,
        CASE WHEN list_contains(CAST($null_item_id AS VARCHAR[]), item_id) THEN NULL ELSE item_id END AS item_id,
        CASE WHEN list_contains(CAST($null_event_type AS VARCHAR[]), event_type) THEN NULL ELSE event_type END AS event_type,
        CASE WHEN list_contains(CAST($null_category AS VARCHAR[]), category) THEN NULL ELSE category END AS category,
        CASE WHEN list_contains(CAST($null_ts AS VARCHAR[]), ts) THEN NULL ELSE ts END AS ts_text,
        CASE WHEN list_contains(CAST($null_ts_offset AS VARCHAR[]), ts_offset) THEN NULL ELSE ts_offset END AS offset_text
    FROM landing_fields
),
renamed AS (
    SELECT * REPLACE (
        coalesce(CAST($rename_to AS VARCHAR[])[list_position(CAST($rename_from AS VARCHAR[]), coalesce(event_type, $default_event_type))],
                 coalesce(event_type, $default_event_type)) AS event_type)
    FROM nulled
),
typed AS (
    SELECT
        source_row, line_reason, raw_line,
        raw_session_id, raw_user_id, raw_item_id, raw_event_type, raw_category,
        CASE WHEN $has_offset
             THEN coalesce(raw_ts_part, '<null>') || ' + ' || coalesce(raw_ts_offset, '<null>') || ' ' || $offset_unit
             ELSE raw_ts_part END AS raw_ts,
        session_id, user_id, item_id, event_type, category,
        try(CASE
            -- In UTC (the scratch session's zone) one cast reads both forms; elsewhere naive text
            -- needs the profile's zone, so the offset is looked for first.
            WHEN $ts_kind = 'iso8601' AND $timezone = 'UTC'
                THEN TRY_CAST(TRY_CAST(ts_text AS TIMESTAMPTZ) AS TIMESTAMP)
            WHEN $ts_kind = 'iso8601' AND regexp_matches(ts_text, '(Z|[+-]\d\d:?\d\d)$')
                THEN TRY_CAST(TRY_CAST(ts_text AS TIMESTAMPTZ) AS TIMESTAMP)
            WHEN $ts_kind = 'iso8601'
                THEN TRY_CAST(timezone($timezone, TRY_CAST(ts_text AS TIMESTAMP)) AS TIMESTAMP)
            WHEN $ts_kind = 'strptime'
                THEN TRY_CAST(timezone($timezone, try_strptime(ts_text, $ts_format)) AS TIMESTAMP)
            WHEN $ts_kind IN ('unix_s', 'unix_ms') AND abs(TRY_CAST(ts_text AS DOUBLE)) < 1e15
                THEN make_timestamp(CAST(round(TRY_CAST(ts_text AS DOUBLE)
                     * CASE WHEN $ts_kind = 'unix_s' THEN 1e6 ELSE 1e3 END) AS BIGINT))
        END
        + CASE
            WHEN NOT $has_offset THEN INTERVAL 0 MICROSECONDS
            WHEN abs(TRY_CAST(offset_text AS DOUBLE)) * $offset_us < 1e17
                THEN to_microseconds(CAST(round(TRY_CAST(offset_text AS DOUBLE) * $offset_us) AS BIGINT))
        END) AS ts,
        line_reason IS NULL AND len(CAST($keep_types AS VARCHAR[])) > 0
            AND NOT list_contains(CAST($keep_types AS VARCHAR[]), event_type) AS is_filtered,
        coalesce(CAST($weight_values AS DOUBLE[])[list_position(CAST($weight_types AS VARCHAR[]), event_type)],
                 CAST($default_weight AS DOUBLE)) AS weight
    FROM renamed
),
flagged AS (
    SELECT
        *,
        coalesce(ok AND list_contains($required, 'session_id') AND session_id IS NULL, false) AS null_session_id,
        coalesce(ok AND list_contains($required, 'user_id') AND user_id IS NULL, false) AS null_user_id,
        coalesce(ok AND list_contains($required, 'item_id') AND item_id IS NULL, false) AS null_item_id,
        coalesce(ok AND list_contains($required, 'event_type') AND event_type IS NULL, false) AS null_event_type,
        coalesce(ok AND list_contains($required, 'category') AND category IS NULL, false) AS null_category,
        coalesce(ok AND list_contains($required, 'ts') AND ts IS NULL, false) AS null_ts,
        coalesce(ok AND ts IS NOT NULL AND NOT (ts >= $min_ts AND ts <= $max_ts), false) AS range_ts,
        coalesce(ok AND session_id IS NOT NULL AND NOT (length(session_id) BETWEEN 1 AND $id_max_chars
                 AND NOT regexp_matches(session_id, $id_forbidden)), false) AS regex_session_id,
        coalesce(ok AND user_id IS NOT NULL AND NOT (length(user_id) BETWEEN 1 AND $id_max_chars
                 AND NOT regexp_matches(user_id, $id_forbidden)), false) AS regex_user_id,
        coalesce(ok AND item_id IS NOT NULL AND NOT (length(item_id) BETWEEN 1 AND $id_max_chars
                 AND NOT regexp_matches(item_id, $id_forbidden)), false) AS regex_item_id,
        coalesce(ok AND event_type IS NOT NULL AND NOT list_contains($event_types, event_type), false) AS set_event_type
    FROM (SELECT *, line_reason IS NULL AND NOT is_filtered AS ok FROM typed)
),
routed AS (
    SELECT
        *,
        null_session_id OR null_user_id OR null_item_id OR null_event_type OR null_category OR null_ts
            OR range_ts OR regex_session_id OR regex_user_id OR regex_item_id OR set_event_type AS rejected
    FROM flagged
)
SELECT
    source_row, line_reason, raw_line, is_filtered,
    session_id, user_id, item_id, event_type, category, ts, CAST(ts AS DATE) AS event_date, weight,
    null_session_id, null_user_id, null_item_id, null_event_type, null_category, null_ts,
    range_ts, regex_session_id, regex_user_id, regex_item_id, set_event_type,
    rejected,
    CASE
        WHEN NOT rejected THEN NULL
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
    CASE WHEN rejected THEN raw_session_id END AS raw_session_id,
    CASE WHEN rejected THEN raw_user_id END AS raw_user_id,
    CASE WHEN rejected THEN raw_item_id END AS raw_item_id,
    CASE WHEN rejected THEN raw_event_type END AS raw_event_type,
    CASE WHEN rejected THEN raw_category END AS raw_category,
    CASE WHEN rejected THEN raw_ts END AS raw_ts
FROM routed;
