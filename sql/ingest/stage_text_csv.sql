-- Canonical text columns of a delimited file, one physical line = one record (quoted newlines are
-- not allowed: every public click log we read keeps a record on one line, and a stray quote must
-- not swallow the lines after it). A line quarantines itself alone when it is malformed: bad
-- bytes, an unbalanced quote, or the wrong number of fields. Fields of a line with no quote
-- character are split on the delimiter (any length); a line with quotes is checked against the
-- quoted-field grammar ($full_pattern) and split by $field_pattern, then unquoted ("" -> ").
-- $pos_<field>: 1-based position of each canonical field, NULL when the profile does not map it.
INSERT INTO stage_text BY NAME
WITH split AS (
    SELECT line_no, line, bad_bytes, excerpt,
           CASE
               WHEN bad_bytes IS NOT NULL OR line = '' THEN NULL
               WHEN $quote <> '' AND contains(line, $quote) THEN
                   CASE WHEN regexp_full_match(line, $full_pattern) THEN
                       list_transform(regexp_extract_all(line || $delim, $field_pattern, 1),
                                      lambda f: CASE WHEN starts_with(f, $quote)
                                                THEN replace(f[2:-2], $quote || $quote, $quote) ELSE f END)
                   END
               ELSE string_split(line, $delim)
           END AS f
    FROM stage_lines
    WHERE line_no > $header_lines
),
judged AS (
    SELECT *,
           CASE
               WHEN bad_bytes IS NOT NULL THEN bad_bytes
               WHEN line = '' THEN 'blank line'
               WHEN f IS NULL THEN 'malformed line: unbalanced quote'
               WHEN len(f) <> $n_fields THEN 'malformed line: expected ' || $n_fields || ' fields, found ' || len(f)
           END AS bad
    FROM split
)
SELECT line_no AS source_row,
       CASE WHEN bad IS NULL THEN f[$pos_session_id] END AS session_id,
       CASE WHEN bad IS NULL THEN f[$pos_user_id] END AS user_id,
       CASE WHEN bad IS NULL THEN f[$pos_item_id] END AS item_id,
       CASE WHEN bad IS NULL THEN f[$pos_event_type] END AS event_type,
       CASE WHEN bad IS NULL THEN f[$pos_category] END AS category,
       CASE WHEN bad IS NULL THEN f[$pos_ts] END AS ts,
       CASE WHEN bad IS NULL THEN f[$pos_ts_offset] END AS ts_offset,
       bad AS bad_line_reason,
       CASE WHEN bad IS NOT NULL THEN excerpt END AS raw_line
FROM judged;
