-- One model's top-k of one kind for one night, from the Arrow table the caller registered as
-- `publish_input` (entity, entity_idx, rank, item_idx, score): entity is the original user / session
-- id, or NULL when the entity is an item (item_similar), given as its vocabulary index entity_idx.
-- Indices become original ids HERE, by joining the vocabulary; an index missing from it drops the row,
-- which the caller detects by comparing the inserted count with the input count.
INSERT INTO recs.candidates BY NAME
WITH input AS (
    SELECT entity, entity_idx, rank, item_idx, score FROM publish_input
),
mapped AS (
    SELECT
        coalesce(i.entity, source_item.item_id) AS entity_id,
        i.rank,
        item.item_id,
        i.score
    FROM input i
        LEFT JOIN features.item_vocab source_item ON source_item.item_idx = i.entity_idx
        JOIN features.item_vocab item ON item.item_idx = i.item_idx
)
SELECT
    $kind                AS kind,
    $run_date::DATE      AS run_date,
    $model               AS model,
    $model_version       AS model_version,
    entity_id,
    rank,
    item_id,
    score::DOUBLE        AS score
FROM mapped
WHERE entity_id IS NOT NULL;
