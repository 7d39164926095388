-- Candidates for a user's top-N items, from the Arrow table the caller registered as `publish_input`:
--   entity   original user id (str) per input row
--   rank     1..k, dense per entity (padding already dropped)
--   item_idx the recommended item's features.item_vocab index
--   score    FLOAT
-- Indices become original ids HERE, by joining the vocabulary; an index missing from it drops the row,
-- which the caller detects by comparing the inserted count with the input count.
INSERT INTO recs.candidate_user_topn (run_date, model, model_version, user_id, rank, item_id, score)
SELECT
    $run_date::DATE,
    $model,
    $model_version,
    i.entity,
    i.rank,
    v.item_id,
    i.score::DOUBLE
FROM publish_input i
    JOIN features.item_vocab v ON v.item_idx = i.item_idx;
