SELECT * FROM staging.validate_rows
