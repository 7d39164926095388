-- Carry one scratch database's quarantined rows into the working database, stamped with the file's identity.
INSERT INTO quarantine.clicks BY NAME SELECT * REPLACE ($file_id AS file_id) FROM scratch.quarantine.clicks;
