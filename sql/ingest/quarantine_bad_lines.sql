-- Malformed lines (bad bytes, unbalanced quote, wrong field count, invalid JSON), kept as a bounded
-- excerpt with the reason and the exact line number. Moved to quarantine after validation
-- (quarantine_bad_lines_move.sql), which rewrites the run's quarantine rows. Blank lines are not
-- quarantined: they hold no data and are counted as rows_blank.
CREATE OR REPLACE TABLE staging.bad_lines AS
SELECT $source_file AS source_file, $file_id AS file_id, source_row, bad_line_reason AS reason, raw_line,
       $run_id AS run_id, now()::TIMESTAMP AS quarantined_at
FROM stage_text
WHERE bad_line_reason IS NOT NULL AND bad_line_reason <> 'blank line';
