-- The references of postings, balances, lots and shipment lines are checked once per insert
-- statement instead of once per row.
--
-- Why: a foreign key checks every inserted row with a query of its own that also locks the
-- row it finds (`for key share`), and that lock is a write to the referenced row. Measured on
-- a bulk import of 155 000 postings, the two foreign keys of `postings` took 1.25 s of the
-- 1.73 s its inserts cost; a check per statement over the inserted rows (a transition table)
-- took about a fifth of that. The writer inserts thousands of rows a statement, so the check
-- runs a few times per batch.
--
-- What keeps it as strong: every row inserted is still checked, in the same statement, and
-- the statement fails with `foreign_key_violation` naming what is missing. The lock a foreign
-- key takes exists to stop a concurrent delete of the referenced row; here the referenced
-- rows can never be deleted or have their key changed (entries are append-only since 0001;
-- the triggers below refuse it for lots, items, parties and shipments), so there
-- is nothing to race. SQLite keeps its foreign keys: it checks them without locks or extra
-- queries.
--
-- Each probe is a lookup by primary key (`offset 0` keeps the planner from turning the check
-- into a join that hashes the whole referenced table, a cost that would grow with the ledger).

alter table postings drop constraint postings_seq_fkey, drop constraint postings_lot_fkey;
alter table balances drop constraint balances_lot_fkey;
alter table lots drop constraint lots_sku_fkey, drop constraint lots_origin_seq_fkey;
alter table shipment_lines
    drop constraint shipment_lines_shipment_id_fkey,
    drop constraint shipment_lines_destination_fkey,
    drop constraint shipment_lines_sku_fkey,
    drop constraint shipment_lines_lot_fkey;

create function postings_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from inserted n
               where not exists (select 1 from entries e where e.seq = n.seq offset 0)) then
        raise foreign_key_violation using message = 'a posting names an entry that does not exist';
    end if;
    if exists (select 1 from inserted n
               where not exists (select 1 from lots l where l.lot = n.lot offset 0)) then
        raise foreign_key_violation using message = 'a posting names a lot that does not exist';
    end if;
    return null;
end;
$$;
create trigger postings_references after insert on postings
referencing new table as inserted for each statement execute function postings_references();

create function balances_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from inserted n
               where not exists (select 1 from lots l where l.lot = n.lot offset 0)) then
        raise foreign_key_violation using message = 'a balance names a lot that does not exist';
    end if;
    return null;
end;
$$;
create trigger balances_references after insert on balances
referencing new table as inserted for each statement execute function balances_references();

create function lots_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from inserted n
               where not exists (select 1 from items i where i.sku = n.sku offset 0)) then
        raise foreign_key_violation using message = 'a lot names an item that does not exist';
    end if;
    if exists (select 1 from inserted n
               where not exists (select 1 from entries e where e.seq = n.origin_seq offset 0)) then
        raise foreign_key_violation using message = 'a lot names an entry that does not exist';
    end if;
    return null;
end;
$$;
create trigger lots_references after insert on lots
referencing new table as inserted for each statement execute function lots_references();

create function shipment_lines_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from inserted n
               where not exists (select 1 from shipments s where s.id = n.shipment_id offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names a shipment that does not exist';
    end if;
    if exists (select 1 from inserted n
               where not exists (select 1 from parties p where p.code = n.destination offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names a party that does not exist';
    end if;
    if exists (select 1 from inserted n
               where not exists (select 1 from items i where i.sku = n.sku offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names an item that does not exist';
    end if;
    if exists (select 1 from inserted n
               where not exists (select 1 from lots l where l.lot = n.lot offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names a lot that does not exist';
    end if;
    return null;
end;
$$;
-- Shipment lines are inserted and updated by one upsert; an update never changes the
-- references (the key columns are the conflict target and `shipment_dispatch_fixed` keeps
-- the rest), so only inserts are checked.
create trigger shipment_lines_references after insert on shipment_lines
referencing new table as inserted for each statement execute function shipment_lines_references();

-- What the checks above rely on: a referenced row is never deleted and its key never changes.
create function keep_referenced() returns trigger language plpgsql as $$
begin
    raise exception '% rows are never deleted and their keys never change: ledger rows refer to them', tg_table_name;
end;
$$;
create trigger lots_keep_referenced before update or delete on lots
for each row execute function keep_referenced();
create trigger items_keep_referenced_delete before delete on items
for each row execute function keep_referenced();
create trigger items_keep_referenced_key before update of sku on items
for each row when (old.sku is distinct from new.sku) execute function keep_referenced();
create trigger parties_keep_referenced_delete before delete on parties
for each row execute function keep_referenced();
create trigger parties_keep_referenced_key before update of code on parties
for each row when (old.code is distinct from new.code) execute function keep_referenced();
create trigger shipments_keep_referenced_delete before delete on shipments
for each row execute function keep_referenced();
create trigger shipments_keep_referenced_key before update of id on shipments
for each row when (old.id is distinct from new.id) execute function keep_referenced();
