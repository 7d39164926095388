-- One file's quarantine, carried from its scratch database (attached as `scratch`) into the working
-- database: malformed lines with their excerpt, and rows rejected by a row-level check (not
-- duplicates: those are counted, not quarantined) with their raw text and first failing check.
INSERT INTO quarantine.clicks BY NAME
SELECT $source_file AS source_file, b.source_row,
       coalesce(b.line_reason, b.reason) AS reason,
       b.raw_session_id, b.raw_user_id, b.raw_item_id, b.raw_event_type, b.raw_category, b.raw_ts,
       $run_id AS run_id, $quarantined_at::TIMESTAMP AS quarantined_at, b.raw_line, $file_id AS file_id
FROM scratch.staging.batch AS b
ANTI JOIN scratch.staging.duplicates AS d USING (source_row)
WHERE (b.line_reason IS NOT NULL AND b.line_reason <> 'blank line') OR b.rejected;
