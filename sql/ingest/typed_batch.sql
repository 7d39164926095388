-- staging.batch: one row per staged data row with its raw text and the typed attempt.
-- Timestamps: ISO-8601 with an offset/Z is read as that instant; naive text is read in the
-- profile's zone; Unix seconds/milliseconds are UTC. Unparseable or out-of-range -> NULL (GX then
-- quarantines the row with its raw text). Exact duplicates of an earlier row are flagged, not
-- quarantined: ingest drops and counts them (unless the profile says dedupe = false).
CREATE OR REPLACE TABLE staging.batch AS
WITH src AS (
    SELECT * FROM stage_text WHERE bad_line_reason IS NULL
),
typed AS (
    SELECT
        $source_file AS source_file,
        source_row,
        session_id AS raw_session_id,
        user_id AS raw_user_id,
        item_id AS raw_item_id,
        event_type AS raw_event_type,
        category AS raw_category,
        ts AS raw_ts,
        nullif(session_id, '') AS session_id,
        nullif(user_id, '') AS user_id,
        nullif(item_id, '') AS item_id,
        coalesce(nullif(event_type, ''), $default_event_type) AS event_type,
        nullif(category, '') AS category,
        CASE
            WHEN $ts_kind = 'iso8601' AND regexp_matches(ts, '(Z|[+-]\d\d:?\d\d)$')
                THEN TRY_CAST(TRY_CAST(ts AS TIMESTAMPTZ) AS TIMESTAMP)
            WHEN $ts_kind = 'iso8601'
                THEN TRY_CAST(timezone($timezone, TRY_CAST(ts AS TIMESTAMP)) AS TIMESTAMP)
            WHEN $ts_kind = 'strptime'
                THEN TRY_CAST(timezone($timezone, try_strptime(ts, $ts_format)) AS TIMESTAMP)
            WHEN $ts_kind IN ('unix_s', 'unix_ms') AND abs(TRY_CAST(ts AS DOUBLE)) < 1e15
                THEN make_timestamp(CAST(round(TRY_CAST(ts AS DOUBLE)
                     * CASE WHEN $ts_kind = 'unix_s' THEN 1e6 ELSE 1e3 END) AS BIGINT))
        END AS ts
    FROM src
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
    WHERE $dedupe
    GROUP BY ALL
    HAVING count(*) > 1
)
SELECT k.* EXCLUDE (event_key),
       CAST(k.ts AS DATE) AS event_date,
       coalesce(d.first_row <> k.source_row, false) AS is_duplicate
FROM keyed AS k
LEFT JOIN dup_groups AS d
  ON k.event_key = d.event_key
 AND k.session_id IS NOT DISTINCT FROM d.session_id
 AND k.user_id IS NOT DISTINCT FROM d.user_id
 AND k.item_id IS NOT DISTINCT FROM d.item_id
 AND k.event_type IS NOT DISTINCT FROM d.event_type
 AND k.category IS NOT DISTINCT FROM d.category
 AND k.ts IS NOT DISTINCT FROM d.ts;
