-- TRUNCATE fires no row triggers, so the append-only rule of 0001 needs a statement-level
-- trigger as well.
create function refuse_truncate() returns trigger language plpgsql as $$
begin
    raise exception '% are append-only', tg_table_name;
end;
$$;
create trigger entries_no_truncate before truncate on entries for each statement execute function refuse_truncate();
create trigger postings_no_truncate before truncate on postings for each statement execute function refuse_truncate();
