-- Let go of the scratch database attached by attach_scratch.sql.
DETACH scratch;
