-- Warehouses written before the one-table layout still hold per-kind tables (recs.user_topn, ...,
-- recs.candidate_item_similar): how many of them are left (0 once migrated).
SELECT count(*) AS legacy_tables
FROM information_schema.tables
WHERE table_catalog = current_database()
  AND table_schema = 'recs'
  AND table_name IN ('user_topn', 'session_next', 'item_similar',
                     'candidate_user_topn', 'candidate_session_next', 'candidate_item_similar');
