-- Canonical text fields of a JSON-lines file, extracted by the profile's JSON pointers (p_<field>,
-- NULL = field absent; a dotted key a.b is the pointer /a/b). A line that is not a JSON object is
-- malformed alone; blank lines are counted apart. Settings: getvariable('landing') (set_landing.sql).
CREATE OR REPLACE TEMP VIEW landing_fields AS
WITH opt AS (
    SELECT getvariable('landing') AS o
),
parsed AS (
    SELECT line_no, line, excerpt,
           CASE
               WHEN bad_bytes IS NOT NULL THEN bad_bytes
               WHEN trim(line) = '' THEN 'blank line'
               -- CASE, not AND: DuckDB evaluates both sides of an AND, and json_type fails on invalid JSON
               WHEN NOT CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END
                   THEN 'malformed line: invalid JSON object'
           END AS bad
    FROM stage_lines, opt
    WHERE line_no > o.header_lines
),
-- Only valid objects reach json_extract_string: a CASE around it does not stop DuckDB from
-- evaluating it on an invalid line (and failing the whole file), a NULL argument does.
objects AS (
    SELECT *, CASE WHEN bad IS NULL THEN line END AS j FROM parsed
)
SELECT line_no AS source_row,
       json_extract_string(j, CAST(o.p_session_id AS VARCHAR)) AS session_id,
       json_extract_string(j, CAST(o.p_user_id AS VARCHAR)) AS user_id,
       json_extract_string(j, CAST(o.p_item_id AS VARCHAR)) AS item_id,
       json_extract_string(j, CAST(o.p_event_type AS VARCHAR)) AS event_type,
       json_extract_string(j, CAST(o.p_category AS VARCHAR)) AS category,
       json_extract_string(j, CAST(o.p_ts AS VARCHAR)) AS ts,
       json_extract_string(j, CAST(o.p_ts_offset AS VARCHAR)) AS ts_offset,
       bad AS line_reason,
       CASE WHEN bad IS NOT NULL THEN excerpt END AS raw_line
FROM objects, opt;
