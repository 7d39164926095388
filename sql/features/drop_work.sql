-- Build step 7: the build's working table is not needed once the outputs are written.
DROP TABLE IF EXISTS fe_events
