-- Loader, P4 user protocol: one row per (entity, item) seen on the target days [$target_from, $target_to]
-- that the model can rank:
--   * the entity has history in [$history_from, $history_to] (a row the model was trained on),
--   * the item occurs in that history window at all (an item the model was trained on),
--   * the item is not in the entity's own history (history is excluded from the ranking, so a
--     repeat could never be hit).
WITH history AS (
    SELECT entity_idx, item_idx
    FROM features.entity_item_weights($history_from, $history_to, $entity, NULL, 1.0)
),

target_day AS (
    SELECT entity_idx, item_idx
    FROM features.entity_item_weights($target_from, $target_to, $entity, NULL, 1.0)
),

rankable AS (
    SELECT t.entity_idx, t.item_idx
    FROM target_day AS t
    WHERE t.entity_idx IN (SELECT entity_idx FROM history)
      AND t.item_idx IN (SELECT item_idx FROM history)
),

final AS (
    SELECT r.entity_idx, r.item_idx
    FROM rankable AS r
    ANTI JOIN history AS h ON r.entity_idx = h.entity_idx AND r.item_idx = h.item_idx
)

SELECT * FROM final
ORDER BY entity_idx, item_idx
