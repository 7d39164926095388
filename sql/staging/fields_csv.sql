-- Canonical text fields of a delimited file, one physical line = one record (quoted newlines are
-- not allowed: every public click log we read keeps a record on one line, and a stray quote must
-- not swallow the lines after it). A line is malformed alone: bad bytes, an unbalanced quote, or the
-- wrong number of fields. Fields of a line with no quote character are split on the delimiter (any
-- length); a line with quotes is checked against the quoted-field grammar (full_pattern) and split
-- by field_pattern, then unquoted ("" -> "). pos_<field>: 1-based position, NULL when unmapped.
-- Settings: getvariable('landing') (set_landing.sql). A view: batch.sql reads it in its one pass.
CREATE OR REPLACE TEMP VIEW landing_fields AS
WITH opt AS (
    SELECT getvariable('landing') AS o
),
split AS (
    SELECT line_no, line, bad_bytes, excerpt,
           CASE
               WHEN bad_bytes IS NOT NULL OR line = '' THEN NULL
               WHEN o.quote <> '' AND contains(line, o.quote) THEN
                   CASE WHEN regexp_full_match(line, o.full_pattern) THEN
                       list_transform(regexp_extract_all(line || o.delim, o.field_pattern, 1),
                                      lambda f: CASE WHEN starts_with(f, o.quote)
                                                THEN replace(f[2:-2], o.quote || o.quote, o.quote) ELSE f END)
                   END
               ELSE string_split(line, o.delim)
           END AS f
    FROM stage_lines, opt
    WHERE line_no > o.header_lines
),
judged AS (
    SELECT split.*,
           CASE
               WHEN bad_bytes IS NOT NULL THEN bad_bytes
               WHEN line = '' THEN 'blank line'
               WHEN f IS NULL THEN 'malformed line: unbalanced quote'
               WHEN len(f) <> o.n_fields THEN 'malformed line: expected ' || o.n_fields || ' fields, found ' || len(f)
           END AS bad
    FROM split, opt
)
SELECT line_no AS source_row,
       CASE WHEN bad IS NULL THEN f[CAST(o.pos_session_id AS INTEGER)] END AS session_id,
       CASE WHEN bad IS NULL THEN f[CAST(o.pos_user_id AS INTEGER)] END AS user_id,
       CASE WHEN bad IS NULL THEN f[CAST(o.pos_item_id AS INTEGER)] END AS item_id,
       CASE WHEN bad IS NULL THEN f[CAST(o.pos_event_type AS INTEGER)] END AS event_type,
       CASE WHEN bad IS NULL THEN f[CAST(o.pos_category AS INTEGER)] END AS category,
       CASE WHEN bad IS NULL THEN f[CAST(o.pos_ts AS INTEGER)] END AS ts,
       CASE WHEN bad IS NULL THEN f[CAST(o.pos_ts_offset AS INTEGER)] END AS ts_offset,
       bad AS line_reason,
       CASE WHEN bad IS NOT NULL THEN excerpt END AS raw_line
FROM judged, opt;
