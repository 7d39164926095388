-- staging.batch: one row per staged data row with its raw text and the typed attempt.
-- Parameters come from tasks.profiles.typed_batch_params(profile) (plus $source_file).
-- Nulls: a field's raw text that is in $null_<field> (the profile's null_values for that field;
-- always holding '') is NULL: a NULL user_id is an anonymous session, never a user called 'NA'.
-- Event types: NULL -> $default_event_type, then renamed ($rename_from[i] -> $rename_to[i]); the
-- keep-list ($keep_types, empty = keep all) and the weights ($weight_types[i] -> $weight_values[i],
-- others $default_weight) use the renamed name. A row whose type is not kept is is_filtered: ingest
-- counts and drops it before validation (count_filtered.sql, drop_filtered.sql).
-- Timestamps: ISO-8601 with an offset/Z is read as that instant; naive text is read in the
-- profile's zone; Unix seconds/milliseconds are UTC. With an offset column ($has_offset) the
-- instant is that timestamp (a date reads as its midnight) plus ts_offset * $offset_us
-- microseconds (elapsed time, added after the zone conversion); raw_ts then shows both parts
-- ('2016-05-09 + 526309 ms'), so a quarantined row says which part was unreadable.
-- Unparseable or out-of-range (either part) -> NULL (GX then quarantines the row with its raw
-- text). Exact duplicates of an earlier kept row are flagged, not quarantined: ingest drops and
-- counts them (unless the profile says dedupe = false). Filtered rows are never duplicates: each
-- is counted once, as filtered (a kept row never equals a filtered one: the type decides both).
CREATE OR REPLACE TABLE staging.batch AS
WITH src AS (
    SELECT * FROM stage_text WHERE bad_line_reason IS NULL
),
nulled AS (
    SELECT
        source_row,
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
    FROM src
),
typed_type AS (
    SELECT * REPLACE (
        coalesce(CAST($rename_to AS VARCHAR[])[list_position(CAST($rename_from AS VARCHAR[]), coalesce(event_type, $default_event_type))],
                 coalesce(event_type, $default_event_type)) AS event_type)
    FROM nulled
),
typed AS (
    SELECT
        $source_file AS source_file,
        source_row,
        raw_session_id,
        raw_user_id,
        raw_item_id,
        raw_event_type,
        raw_category,
        CASE WHEN $has_offset
             THEN coalesce(raw_ts_part, '<null>') || ' + ' || coalesce(raw_ts_offset, '<null>') || ' ' || $offset_unit
             ELSE raw_ts_part END AS raw_ts,
        raw_ts_offset,
        session_id,
        user_id,
        item_id,
        event_type,
        category,
        try(CASE
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
        len(CAST($keep_types AS VARCHAR[])) > 0
            AND NOT list_contains(CAST($keep_types AS VARCHAR[]), event_type) AS is_filtered,
        coalesce(CAST($weight_values AS DOUBLE[])[list_position(CAST($weight_types AS VARCHAR[]), event_type)],
                 CAST($default_weight AS DOUBLE)) AS weight
    FROM typed_type
),
keyed AS (
    SELECT *, hash(session_id, user_id, item_id, event_type, category, ts) AS event_key FROM typed
),
-- Exact duplicates are rare: find the groups with more than one row by aggregation (cheap), then
-- flag every row of such a group except its first. The hash only narrows the join; equality of
-- every field decides.
dup_groups AS (
    SELECT event_key, session_id, user_id, item_id, event_type, category, ts, min(source_row) AS first_row
    FROM keyed
    WHERE $dedupe AND NOT is_filtered
    GROUP BY ALL
    HAVING count(*) > 1
)
SELECT k.* EXCLUDE (event_key),
       CAST(k.ts AS DATE) AS event_date,
       coalesce(d.first_row <> k.source_row, false) AS is_duplicate
FROM keyed AS k
LEFT JOIN dup_groups AS d
  ON NOT k.is_filtered
 AND k.event_key = d.event_key
 AND k.session_id IS NOT DISTINCT FROM d.session_id
 AND k.user_id IS NOT DISTINCT FROM d.user_id
 AND k.item_id IS NOT DISTINCT FROM d.item_id
 AND k.event_type IS NOT DISTINCT FROM d.event_type
 AND k.category IS NOT DISTINCT FROM d.category
 AND k.ts IS NOT DISTINCT FROM d.ts;
