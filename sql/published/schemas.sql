-- Schemas of the published file; its layout mirrors the working database's names.
CREATE SCHEMA pub.recs;
CREATE SCHEMA pub.models;
CREATE SCHEMA pub.ops;
