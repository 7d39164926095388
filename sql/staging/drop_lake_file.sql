-- A manifest row whose file was merged into a rebuilt one.
DELETE FROM ops.lake_files WHERE rel_path = $rel_path;
