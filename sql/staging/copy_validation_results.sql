-- Carry one scratch database's validation results into the working database.
INSERT INTO ops.validation_results BY NAME SELECT * FROM scratch.ops.validation_results;
