-- Malformed lines join the rows the validation suite quarantined.
INSERT INTO quarantine.clicks BY NAME SELECT * FROM staging.bad_lines;
