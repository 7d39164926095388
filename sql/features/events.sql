-- Build step 1: the window's clicks, cut into sessions, consecutive repeats collapsed.
-- Writes the temp table fe_events, which filter_step.sql then prunes until a fixed point.
-- Event order everywhere is (ts, source_file, source_row): ties in ts resolve by lineage.
--   $start_date, $end_date   window of raw.clicks.event_date, both inclusive
--   $derive_from_user        TRUE: sessions = a user's events split at gaps > $gap_minutes
--                            (events without user_id are dropped: they cannot be assigned);
--                            FALSE: the source's session_id, as given
--   $gap_minutes             inactivity gap (strictly greater starts a new session)
--   $collapse_repeats        drop an event whose item equals the previous event's item in its session;
--                            the kept event carries the largest weight of the run it stands for
--                            (view, cart, purchase of one item in a row -> one event, purchase's weight)
-- weight: raw.clicks.weight, the profile's weight of the event type (1.0 unless the profile says so).
CREATE OR REPLACE TEMP TABLE fe_events AS
WITH source AS (
    SELECT session_id AS source_session_id, user_id, item_id, ts, source_file, source_row,
           coalesce(weight, 1.0) AS weight
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

runs AS (
    -- a run = consecutive events of one item in a session; run_no numbers them along the session
    SELECT
        *,
        previous_item_id IS NULL OR item_id <> previous_item_id AS starts_run,
        sum(CASE WHEN previous_item_id IS NULL OR item_id <> previous_item_id THEN 1 ELSE 0 END) OVER (
            PARTITION BY session_id ORDER BY ts, source_file, source_row
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS run_no
    FROM with_previous
),

run_weights AS (
    -- the largest weight of each run that holds more than one event (repeats are few: a small join)
    SELECT session_id, run_no, max(weight) AS run_weight
    FROM runs
    WHERE $collapse_repeats
    GROUP BY session_id, run_no
    HAVING count(*) > 1
),

final AS (
    SELECT r.session_id, r.session_user_id, r.item_id, r.ts, r.source_file, r.source_row,
           coalesce(w.run_weight, r.weight) AS weight
    FROM runs AS r
    LEFT JOIN run_weights AS w USING (session_id, run_no)
    WHERE NOT $collapse_repeats OR r.starts_run
)

SELECT * FROM final
