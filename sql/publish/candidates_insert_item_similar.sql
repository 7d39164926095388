-- Candidates for an item's most similar items, from the Arrow table the caller registered as `publish_input`:
--   entity   source item_idx (BIGINT) per input row, mapped through features.item_vocab
--   rank     1..k, dense per entity (padding already dropped)
--   item_idx the recommended item's features.item_vocab index
--   score    FLOAT
-- Indices become original ids HERE, by joining the vocabulary; an index missing from it drops the row,
-- which the caller detects by comparing the inserted count with the input count.
INSERT INTO recs.candidate_item_similar (run_date, model, model_version, item_id, rank, similar_item_id, score)
SELECT
    $run_date::DATE,
    $model,
    $model_version,
    s.item_id,
    i.rank,
    v.item_id,
    i.score::DOUBLE
FROM publish_input i
    JOIN features.item_vocab s ON s.item_idx = i.entity
    JOIN features.item_vocab v ON v.item_idx = i.item_idx;
