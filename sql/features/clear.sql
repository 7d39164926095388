-- Build step 4: the per-window tables hold only the latest build (run inside the build's transaction,
-- so readers see the old build or the new one, never a mix).
DELETE FROM features.session_events;
DELETE FROM features.sessions;
DELETE FROM features.interactions;
