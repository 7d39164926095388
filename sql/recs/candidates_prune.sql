-- Keep only the last $keep_nights nights of candidates of each kind (counted back from its newest):
-- older ones were either promoted into recs.recommendations or rejected by the gate.
DELETE FROM recs.candidates c
WHERE run_date <= (SELECT max(run_date) FROM recs.candidates n WHERE n.kind = c.kind)
                  - CAST($keep_nights AS INTEGER);
