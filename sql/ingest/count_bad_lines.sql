-- A staged file's lines by kind: malformed (quarantined whole), blank (counted apart), and rows
-- split into fields. Their sum is checked against the physical line count.
SELECT count(*) FILTER (WHERE bad_line_reason IS NOT NULL AND bad_line_reason <> 'blank line') AS n_bad_lines,
       count(*) FILTER (WHERE bad_line_reason = 'blank line') AS n_blank_lines,
       count(*) FILTER (WHERE bad_line_reason IS NULL) AS n_good_lines
FROM stage_text;
