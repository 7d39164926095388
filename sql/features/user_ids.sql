-- Original user ids in user_idx order (indices are dense, so row i is user_idx i).
SELECT user_id FROM features.user_vocab ORDER BY user_idx;
