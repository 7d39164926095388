-- Loader: the current vocabulary sizes (indices are dense, so size = max index + 1).
SELECT
    (SELECT coalesce(max(item_idx) + 1, 0) FROM features.item_vocab) AS n_items,
    (SELECT coalesce(max(user_idx) + 1, 0) FROM features.user_vocab) AS n_users,
    (SELECT coalesce(max(session_idx) + 1, 0) FROM features.session_vocab) AS n_sessions
