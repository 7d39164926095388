-- The first malformed line and its reason, for a file none of whose lines could be read.
SELECT source_row, bad_line_reason FROM stage_text
WHERE bad_line_reason <> 'blank line' ORDER BY source_row LIMIT 1;
