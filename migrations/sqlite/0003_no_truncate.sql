-- PostgreSQL needs a statement-level trigger against TRUNCATE (its 0003); SQLite has no
-- TRUNCATE (a DELETE without WHERE fires the row triggers of 0001), so this migration only
-- keeps the two schemas' version numbers in step.
select 1;
