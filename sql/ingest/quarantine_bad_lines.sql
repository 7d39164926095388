-- Lines that could not even be split into fields (wrong column count, invalid UTF-8, over-long,
-- invalid JSON): kept whole with DuckDB's error and the line number, and moved to quarantine
-- after validation (quarantine_bad_lines_move.sql), which rewrites the run's quarantine rows.
CREATE OR REPLACE TABLE staging.bad_lines AS
WITH csv_errors AS (
    SELECT line AS source_row,
           string_agg(DISTINCT error_type || ': ' || error_message, '; ') AS reason,
           left(any_value(csv_line), 4096) AS raw_line
    FROM stage_rejects
    GROUP BY line
),
json_errors AS (
    SELECT source_row, bad_line_reason AS reason, raw_line FROM stage_text WHERE bad_line_reason IS NOT NULL
)
SELECT $source_file AS source_file, source_row, 'malformed line: ' || reason AS reason, raw_line,
       $run_id AS run_id, now()::TIMESTAMP AS quarantined_at
FROM (SELECT * FROM csv_errors UNION ALL SELECT * FROM json_errors);
