-- Data rows lost to malformed lines (each line counted once) and rows that were split into fields.
SELECT (SELECT count(DISTINCT line) FROM stage_rejects)
     + (SELECT count(*) FROM stage_text WHERE bad_line_reason IS NOT NULL) AS n_bad_lines,
       (SELECT count(*) FROM stage_text WHERE bad_line_reason IS NULL) AS n_good_lines;
