-- Append one scratch database's accepted rows (attached as `scratch`) to raw.clicks.
INSERT INTO raw.clicks BY NAME SELECT * FROM scratch.staging.accepted;
