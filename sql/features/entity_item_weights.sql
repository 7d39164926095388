-- Table macro: one row per (entity, item) over the events whose DATE(ts) is in [from_date, to_date].
-- The single definition behind features.interactions (built at build time) and every in-memory
-- matrix the loaders read (history windows of the splits), so the two can never drift apart.
--   entity          'user' (sessions without a user are skipped) or 'session'
--   ref_ts          decay reference time; NULL = end of to_date
--   half_life_days  decay_weight = sum over events of 0.5 ^ (age_days / half_life_days)
-- weight_sum: sum of the events' weights (the profile's event-type weights; 1.0 each by default).
-- User-model windows cut by event time (not by session) so a history "before D" holds exactly the
-- events before D, and a target "on D" exactly the events on D.
CREATE OR REPLACE MACRO features.entity_item_weights(from_date, to_date, entity, ref_ts, half_life_days) AS TABLE
WITH sessions_keyed AS (
    SELECT
        session_no,
        CASE WHEN entity = 'session' THEN session_idx ELSE user_idx END AS entity_idx
    FROM features.sessions
),

events_in_window AS (
    SELECT s.entity_idx, e.item_idx, e.ts, coalesce(e.weight, 1.0) AS weight
    FROM features.session_events AS e
    JOIN sessions_keyed AS s USING (session_no)
    WHERE s.entity_idx IS NOT NULL
      AND e.ts >= CAST(from_date AS TIMESTAMP)
      AND e.ts < CAST(to_date AS TIMESTAMP) + INTERVAL 1 DAY
),

final AS (
    SELECT
        entity_idx,
        item_idx,
        count(*) AS n_events,
        max(ts) AS last_ts,
        sum(pow(0.5, (epoch(coalesce(CAST(ref_ts AS TIMESTAMP), CAST(to_date AS TIMESTAMP) + INTERVAL 1 DAY))
                      - epoch(ts)) / 86400.0 / half_life_days)) AS decay_weight,
        sum(weight) AS weight_sum
    FROM events_in_window
    GROUP BY entity_idx, item_idx
)

SELECT * FROM final
