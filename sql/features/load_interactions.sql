-- Loader: (entity, item) weights over events dated [$start_date, $end_date], sorted by row then
-- column so the result is a CSR matrix as is.
WITH source AS (
    SELECT entity_idx, item_idx, n_events, decay_weight, weight_sum
    FROM features.entity_item_weights($start_date, $end_date, $entity, $ref_ts, $half_life_days)
)

SELECT * FROM source
ORDER BY entity_idx, item_idx
