-- Canonical text columns from staged JSON lines, extracted by the profile's JSON pointers
-- (bound values; NULL pointer = field absent). Lines that are not a JSON object are kept whole
-- and flagged, so they are quarantined with their line number.
INSERT INTO stage_text BY NAME
WITH rejected AS (
    SELECT DISTINCT line AS data_line FROM stage_rejects
),
numbered AS (
    SELECT data_line - row_number() OVER (ORDER BY data_line) AS good_before,
           row_number() OVER (ORDER BY data_line) AS n_rejected
    FROM rejected
),
steps AS (
    SELECT good_before, max(n_rejected) AS n_rejected FROM numbered GROUP BY good_before
),
parsed AS (
    SELECT ordinal, line, coalesce(json_valid(line) AND json_type(line) = 'OBJECT', false) AS ok
    FROM stage_lines
)
SELECT p.ordinal + coalesce(s.n_rejected, 0) AS source_row,
       CASE WHEN ok THEN json_extract_string(line, $p_session_id) END AS session_id,
       CASE WHEN ok THEN json_extract_string(line, $p_user_id) END AS user_id,
       CASE WHEN ok THEN json_extract_string(line, $p_item_id) END AS item_id,
       CASE WHEN ok THEN json_extract_string(line, $p_event_type) END AS event_type,
       CASE WHEN ok THEN json_extract_string(line, $p_category) END AS category,
       CASE WHEN ok THEN json_extract_string(line, $p_ts) END AS ts,
       CASE WHEN NOT ok THEN 'invalid JSON object' END AS bad_line_reason,
       CASE WHEN NOT ok THEN line END AS raw_line
FROM parsed p
ASOF LEFT JOIN steps s ON p.ordinal > s.good_before;
