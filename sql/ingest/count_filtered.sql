-- Rows of event types the profile does not keep: counted as filtered (not quarantined, not lost).
SELECT count(*) FROM staging.batch WHERE is_filtered;
