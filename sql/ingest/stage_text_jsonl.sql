-- Canonical text columns of a JSON-lines file, extracted by the profile's JSON pointers (bound
-- values; NULL pointer = field absent; a dotted key a.b is the pointer /a/b). A line that is not
-- a JSON object quarantines itself alone; blank lines are counted apart.
INSERT INTO stage_text BY NAME
WITH parsed AS (
    SELECT line_no, line, excerpt,
           CASE
               WHEN bad_bytes IS NOT NULL THEN bad_bytes
               WHEN trim(line) = '' THEN 'blank line'
               WHEN NOT coalesce(json_valid(line) AND json_type(line) = 'OBJECT', false)
                   THEN 'malformed line: invalid JSON object'
           END AS bad
    FROM stage_lines
)
SELECT line_no AS source_row,
       CASE WHEN bad IS NULL THEN json_extract_string(line, $p_session_id) END AS session_id,
       CASE WHEN bad IS NULL THEN json_extract_string(line, $p_user_id) END AS user_id,
       CASE WHEN bad IS NULL THEN json_extract_string(line, $p_item_id) END AS item_id,
       CASE WHEN bad IS NULL THEN json_extract_string(line, $p_event_type) END AS event_type,
       CASE WHEN bad IS NULL THEN json_extract_string(line, $p_category) END AS category,
       CASE WHEN bad IS NULL THEN json_extract_string(line, $p_ts) END AS ts,
       CASE WHEN bad IS NULL THEN json_extract_string(line, $p_ts_offset) END AS ts_offset,
       bad AS bad_line_reason,
       CASE WHEN bad IS NOT NULL THEN excerpt END AS raw_line
FROM parsed;
