-- The catalog name of the open database (raw.clicks may live in it when no history db is given).
SELECT current_database();
