-- Let go of the warehouse attached by attach_history.sql.
DETACH DATABASE IF EXISTS history;
