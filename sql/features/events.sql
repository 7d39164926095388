-- Build step 1: the window's clicks, cut into sessions, consecutive repeats collapsed.
-- Writes the temp table fe_events, which filter_step.sql then prunes until a fixed point.
-- Event order everywhere is (ts, source_file, source_row): ties in ts resolve by lineage.
--   $start_date, $end_date   window of raw.clicks.event_date, both inclusive
--   $derive_from_user        TRUE: sessions = a user's events split at gaps > $gap_minutes
--                            (events without user_id are dropped: they cannot be assigned);
--                            FALSE: the source's session_id, as given
--   $gap_minutes             inactivity gap (strictly greater starts a new session)
--   $collapse_repeats        drop an event whose item equals the previous event's item in its session
CREATE OR REPLACE TEMP TABLE fe_events AS
WITH source AS (
    SELECT session_id AS source_session_id, user_id, item_id, ts, source_file, source_row
    FROM raw.clicks
    WHERE event_date BETWEEN $start_date AND $end_date
),

grouped AS (
    -- the unit that gets cut into sessions: the user when deriving, else the source session
    SELECT
        *,
        CASE WHEN $derive_from_user THEN user_id ELSE source_session_id END AS group_key
    FROM source
    WHERE NOT $derive_from_user OR user_id IS NOT NULL
),

gaps AS (
    SELECT
        *,
        coalesce(
            $derive_from_user
            AND epoch_us(ts) - epoch_us(lag(ts) OVER by_group) > $gap_minutes * 60e6,
            TRUE  -- first event of the group
        ) AS starts_session
    FROM grouped
    WINDOW by_group AS (PARTITION BY group_key ORDER BY ts, source_file, source_row)
),

sessionised AS (
    -- ts is non-decreasing along the group, so the running max of the session-starting
    -- timestamps is the start of the current session: a deterministic id that survives
    -- window shifts (unlike an ordinal, which changes when earlier days leave the window)
    SELECT
        *,
        CASE
            WHEN $derive_from_user THEN group_key || ':' || strftime(
                max(CASE WHEN starts_session THEN ts END) OVER (
                    PARTITION BY group_key ORDER BY ts, source_file, source_row
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
                ),
                '%Y-%m-%dT%H:%M:%S.%f'
            )
            ELSE group_key
        END AS session_id
    FROM gaps
),

with_previous AS (
    SELECT
        *,
        lag(item_id) OVER by_session AS previous_item_id,
        -- taken before filtering so a session keeps its user even if that event is dropped later
        first_value(user_id IGNORE NULLS) OVER (
            by_session ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
        ) AS session_user_id
    FROM sessionised
    WINDOW by_session AS (PARTITION BY session_id ORDER BY ts, source_file, source_row)
),

final AS (
    SELECT session_id, session_user_id, item_id, ts, source_file, source_row
    FROM with_previous
    WHERE NOT $collapse_repeats
       OR previous_item_id IS NULL
       OR item_id <> previous_item_id
)

SELECT * FROM final
