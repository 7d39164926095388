-- Run $run_id's files are in place and the files it retired are gone: the manifest says so.
DELETE FROM ops.lake_files WHERE retired_by = $run_id AND state = 'retired';
