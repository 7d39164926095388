-- The one pass writes rows in any order (each carries its line number): both cores write the batch.
SET preserve_insertion_order = false;
