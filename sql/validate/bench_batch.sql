-- Benchmark fixture: a synthetic staging.batch of $rows rows over 7 days, as the ingest would stage
-- it (1% duplicates, a third anonymous users), every row valid. Used by tests/test_validate.py bench.
CREATE OR REPLACE TABLE staging.batch AS
WITH g AS (
    SELECT i,
           'S' || (i // 8)::VARCHAR AS sid,
           CASE WHEN i % 3 = 0 THEN NULL ELSE 'U' || (i // 40)::VARCHAR END AS uid,
           'I' || (hash(i) % 50000)::VARCHAR AS iid,
           (['click', 'view', 'cart', 'purchase'])[1 + i % 4] AS et,
           'cat' || (i % 20)::VARCHAR AS cat,
           TIMESTAMP '2024-01-01' + to_seconds(i * 604800 // $rows) AS t
    FROM range($rows) r(i)
)
SELECT 'bench.csv' AS source_file, i + 1 AS source_row,
       sid AS raw_session_id, uid AS raw_user_id, iid AS raw_item_id, et AS raw_event_type,
       cat AS raw_category, strftime(t, '%Y-%m-%dT%H:%M:%SZ') AS raw_ts,
       sid AS session_id, uid AS user_id, iid AS item_id, et AS event_type, cat AS category,
       t AS ts, CAST(t AS DATE) AS event_date, i % 100 = 99 AS is_duplicate
FROM g;
