-- What the run's validation and commit read of one staged file, kept in its scratch database
-- (attached read-write as `scratch`): its accounting, its accepted rows per day, the check columns
-- of its checked rows (kept, not a duplicate) and its quarantine (malformed lines with their
-- excerpt, and rows rejected by a row-level check with their raw text and first failing check;
-- duplicates are counted, not quarantined). The wide batch itself stays in memory.
CREATE SCHEMA scratch.staging;
CREATE TABLE scratch.staging.summary AS SELECT * FROM staging.summary;
CREATE TABLE scratch.staging.validate_days AS SELECT * FROM staging.validate_days;
CREATE TABLE scratch.staging.checks AS
SELECT b.null_session_id, b.null_user_id, b.null_item_id, b.null_event_type, b.null_category, b.null_ts,
       b.range_ts, b.regex_session_id, b.regex_user_id, b.regex_item_id, b.set_event_type
FROM staging.batch AS b
ANTI JOIN staging.duplicates AS d USING (source_row)
WHERE b.line_reason IS NULL AND NOT b.is_filtered;
CREATE TABLE scratch.staging.quarantine AS
SELECT b.source_row, coalesce(b.line_reason, b.reason) AS reason,
       b.raw_session_id, b.raw_user_id, b.raw_item_id, b.raw_event_type, b.raw_category, b.raw_ts, b.raw_line
FROM staging.batch AS b
ANTI JOIN staging.duplicates AS d USING (source_row)
WHERE (b.line_reason IS NOT NULL AND b.line_reason <> 'blank line') OR b.rejected;
