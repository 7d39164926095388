-- The new published file, built next to the working database (path bound, never formatted in).
ATTACH $path AS pub;
