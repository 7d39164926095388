-- The rows this file contributes: not duplicates, not quarantined, inside the run's day (if any),
-- in canonical raw.clicks shape, ordered for good Parquet row groups and stable reads.
CREATE OR REPLACE TABLE staging.accepted AS
SELECT b.session_id, b.user_id, b.item_id, b.event_type, b.category, b.ts, b.event_date,
       b.source_file, b.source_row, $run_id AS run_id, $ingested_at::TIMESTAMP AS ingested_at
FROM staging.batch b
ANTI JOIN staging.rejects r USING (source_row)
WHERE NOT b.is_duplicate AND ($day IS NULL OR b.event_date = $day)
ORDER BY b.event_date, b.ts, b.source_row;
