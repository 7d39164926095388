-- Canonical text columns of a JSON-lines file, extracted by the profile's JSON pointers (bound
-- values; NULL pointer = field absent; a dotted key a.b is the pointer /a/b). A line that is not
-- a JSON object quarantines itself alone; blank lines are counted apart.
INSERT INTO stage_text BY NAME
WITH parsed AS (
    SELECT line_no, line, excerpt,
           CASE
               WHEN bad_bytes IS NOT NULL THEN bad_bytes
               WHEN trim(line) = '' THEN 'blank line'
               -- CASE, not AND: DuckDB evaluates both sides of an AND, and json_type fails on invalid JSON
               WHEN NOT CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END
                   THEN 'malformed line: invalid JSON object'
           END AS bad
    FROM stage_lines
    WHERE line_no > $header_lines
),
-- Only valid objects reach json_extract_string: a CASE around it does not stop DuckDB from
-- evaluating it on an invalid line (and failing the whole file), a NULL argument does.
objects AS (
    SELECT *, CASE WHEN bad IS NULL THEN line END AS j FROM parsed
)
SELECT line_no AS source_row,
       json_extract_string(j, $p_session_id) AS session_id,
       json_extract_string(j, $p_user_id) AS user_id,
       json_extract_string(j, $p_item_id) AS item_id,
       json_extract_string(j, $p_event_type) AS event_type,
       json_extract_string(j, $p_category) AS category,
       json_extract_string(j, $p_ts) AS ts,
       json_extract_string(j, $p_ts_offset) AS ts_offset,
       bad AS bad_line_reason,
       CASE WHEN bad IS NOT NULL THEN excerpt END AS raw_line
FROM objects;
