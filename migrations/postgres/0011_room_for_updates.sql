-- Room on each page of the two tables the writer updates, so that an update of a row can put
-- its new version on the same page.
--
-- Why: PostgreSQL writes every update as a new version of the row. When the version fits on
-- the row's own page and no indexed column changed (a line's acknowledged, damaged and short
-- quantities; a balance's quantity and value), the update is "heap-only" (HOT): none of the
-- table's indexes gets a new entry, and the dead version is pruned from the page as it is
-- next read, without a vacuum. Filled to the brim (the default), a page has no room, so
-- nearly every update moved the row to another page and added an entry to every index: the
-- three of `shipment_lines` and the two of `balances`. Importing the 12 000 acknowledgements
-- of the 40 000-document data set, 220 of 35 600 line updates and 12 000 of 33 700 balance
-- updates were HOT; with this room, all of the lines' and 22 700 of the balances', and the
-- file took 4.0-4.2 s instead of 4.7-5.4 s (BENCHMARKS.md, session 16).
--
-- A line is updated a few times at most (acknowledged in parts, then closed), so half of a
-- page is kept free; balances are many and most are updated rarely, so a fifth. The setting
-- applies to pages written from now on: a ledger migrated with rows already in these tables
-- keeps its full pages until they are rewritten (`vacuum full`), and gains as it grows.
alter table shipment_lines set (fillfactor = 50);
alter table balances set (fillfactor = 80);
