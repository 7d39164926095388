-- Carry one scratch database's quarantined rows and validation results into the working database.
INSERT INTO quarantine.clicks BY NAME SELECT * FROM scratch.quarantine.clicks;
INSERT INTO ops.validation_results BY NAME SELECT * FROM scratch.ops.validation_results;
