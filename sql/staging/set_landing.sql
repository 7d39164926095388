-- How this landing file is read (delimiter, quote grammar, field positions or JSON pointers: one
-- STRUCT built by tasks.ingest.formats), as a session variable: the fields_<format>.sql views read
-- it with getvariable(), since a view cannot take bound parameters.
SET VARIABLE landing = $landing;
