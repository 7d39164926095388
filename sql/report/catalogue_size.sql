-- Items that have an embedding index: the catalogue recommendations can cover.
SELECT count(*) AS items FROM features.item_vocab;
