-- After legacy_migrate (same transaction): the per-kind tables go. Candidates are not migrated: they
-- only live until the gate decides, and a re-run of the night writes them again.
DROP TABLE recs.user_topn;
DROP TABLE recs.session_next;
DROP TABLE recs.item_similar;
DROP TABLE recs.candidate_user_topn;
DROP TABLE recs.candidate_session_next;
DROP TABLE recs.candidate_item_similar;
