-- The file's quarantine, for the commit (quarantine_from_scratch.sql): malformed lines with their
-- excerpt, and rows rejected by a row-level check with their raw text and first failing check
-- (duplicates are counted, not quarantined).
CREATE TABLE scratch.staging.quarantine AS
SELECT b.source_row, coalesce(b.line_reason, b.reason) AS reason,
       b.raw_session_id, b.raw_user_id, b.raw_item_id, b.raw_event_type, b.raw_category, b.raw_ts, b.raw_line
FROM staging.batch AS b
ANTI JOIN staging.duplicates AS d USING (source_row)
WHERE (b.line_reason IS NOT NULL AND b.line_reason <> 'blank line') OR b.rejected;
