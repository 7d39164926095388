-- The first malformed line and its reason, for a file none of whose lines could be read.
SELECT source_row, line_reason FROM staging.batch
WHERE line_reason IS NOT NULL AND line_reason <> 'blank line' ORDER BY source_row LIMIT 1;
