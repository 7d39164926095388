-- Build step 5c: features.interactions over the build window, for the configured entity.
--   $start_date, $end_date   the build window;  $entity   'user' | 'session'
INSERT INTO features.interactions (user_idx, item_idx, n_events, last_ts, weight)
WITH source AS (
    SELECT entity_idx, item_idx, n_events, last_ts, weight_sum
    FROM features.entity_item_weights($start_date, $end_date, $entity, NULL, 1.0)
)

SELECT * FROM source
