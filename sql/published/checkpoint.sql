-- Fold the WAL into the file before it is fsynced and renamed: readers get one self-contained file.
CHECKPOINT;
