-- Reference checks per statement probe each distinct key once, and the references of
-- documents, shipments and production runs are checked per statement too.
--
-- Why: a batch's rows name few keys for their number (an entry has about eight postings; a
-- shipment's line posts out of and into the same lot; a batch's shipments leave from one or
-- two locations), and every probe is an index lookup. Importing the 12 000 acknowledgements
-- of the 40 000-document data set, the postings' check of 0007 took 210 ms of the 1 059 ms
-- the batches' main write statement took (auto_explain with log_triggers), two lookups for
-- each of 71 000 postings; gathering the distinct keys first is a hash of the transition
-- table, far cheaper than the lookups it saves (48 ms). The foreign keys 0007 left in place
-- on the write path check every row with a query of its own and lock the row they find, a
-- write to it: importing the 10 000 frontline batches of that data set, the documents' key
-- to their entry and the shipments' keys to their dispatch entry, location, recipient and
-- closing entry took 153 ms of 1 700 ms of statements, 10 000 calls each. A production run
-- and its materials checked four keys a run and one a material row the same way.
--
-- What keeps it as strong: every key of every inserted or updated row is still checked (a
-- key is in the distinct set if any row names it), in the same statement, with a
-- foreign_key_violation naming what is missing. Each probe is still a lookup by primary key
-- (`offset 0`, as in 0007). The lock a foreign key takes guards against a concurrent delete
-- or key change of the referenced row: entries and production runs never change (0001,
-- 0003, 0004), and locations and BOM versions now refuse both, as lots, items, parties and
-- shipments have since 0007. TRUNCATE fires no row trigger, and a foreign key refused it
-- for a referenced table; the tables whose references are checked per statement now refuse
-- it too.

create or replace function postings_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct seq from inserted) n
               where not exists (select 1 from entries e where e.seq = n.seq offset 0)) then
        raise foreign_key_violation using message = 'a posting names an entry that does not exist';
    end if;
    if exists (select 1 from (select distinct lot from inserted) n
               where not exists (select 1 from lots l where l.lot = n.lot offset 0)) then
        raise foreign_key_violation using message = 'a posting names a lot that does not exist';
    end if;
    return null;
end;
$$;

create or replace function balances_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct lot from inserted) n
               where not exists (select 1 from lots l where l.lot = n.lot offset 0)) then
        raise foreign_key_violation using message = 'a balance names a lot that does not exist';
    end if;
    return null;
end;
$$;

create or replace function lots_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct sku from inserted) n
               where not exists (select 1 from items i where i.sku = n.sku offset 0)) then
        raise foreign_key_violation using message = 'a lot names an item that does not exist';
    end if;
    if exists (select 1 from (select distinct origin_seq from inserted) n
               where not exists (select 1 from entries e where e.seq = n.origin_seq offset 0)) then
        raise foreign_key_violation using message = 'a lot names an entry that does not exist';
    end if;
    return null;
end;
$$;

create or replace function shipment_lines_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct shipment_id from inserted) n
               where not exists (select 1 from shipments s where s.id = n.shipment_id offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names a shipment that does not exist';
    end if;
    if exists (select 1 from (select distinct destination from inserted) n
               where not exists (select 1 from parties p where p.code = n.destination offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names a party that does not exist';
    end if;
    if exists (select 1 from (select distinct sku from inserted) n
               where not exists (select 1 from items i where i.sku = n.sku offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names an item that does not exist';
    end if;
    if exists (select 1 from (select distinct lot from inserted) n
               where not exists (select 1 from lots l where l.lot = n.lot offset 0)) then
        raise foreign_key_violation using message = 'a shipment line names a lot that does not exist';
    end if;
    return null;
end;
$$;

-- Documents name the entry they posted (none for one that posted nothing).
alter table documents drop constraint documents_entry_seq_fkey;

create function documents_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct entry_seq from changed where entry_seq is not null) n
               where not exists (select 1 from entries e where e.seq = n.entry_seq offset 0)) then
        raise foreign_key_violation using message = 'a document names an entry that does not exist';
    end if;
    return null;
end;
$$;
-- A trigger with transition tables has one event, so inserts and updates each have their own.
create trigger documents_references_insert after insert on documents
referencing new table as changed for each statement execute function documents_references();
create trigger documents_references_update after update on documents
referencing new table as changed for each statement execute function documents_references();

-- Shipments name their dispatch entry, the location they leave, their recipient (donations)
-- and their closing entry (once closed). The writer's upsert inserts new shipments and
-- updates changed ones; both are checked, every reference of every row.
alter table shipments
    drop constraint shipments_dispatch_seq_fkey,
    drop constraint shipments_close_seq_fkey,
    drop constraint shipments_from_location_fkey,
    drop constraint shipments_recipient_fkey;

create function shipments_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct dispatch_seq from changed) n
               where not exists (select 1 from entries e where e.seq = n.dispatch_seq offset 0)) then
        raise foreign_key_violation using message = 'a shipment names a dispatch entry that does not exist';
    end if;
    if exists (select 1 from (select distinct close_seq from changed where close_seq is not null) n
               where not exists (select 1 from entries e where e.seq = n.close_seq offset 0)) then
        raise foreign_key_violation using message = 'a shipment names a closing entry that does not exist';
    end if;
    if exists (select 1 from (select distinct from_location from changed) n
               where not exists (select 1 from locations l where l.code = n.from_location offset 0)) then
        raise foreign_key_violation using message = 'a shipment names a location that does not exist';
    end if;
    if exists (select 1 from (select distinct recipient from changed where recipient is not null) n
               where not exists (select 1 from parties p where p.code = n.recipient offset 0)) then
        raise foreign_key_violation using message = 'a shipment names a recipient that does not exist';
    end if;
    return null;
end;
$$;
create trigger shipments_references_insert after insert on shipments
referencing new table as changed for each statement execute function shipments_references();
create trigger shipments_references_update after update on shipments
referencing new table as changed for each statement execute function shipments_references();

-- What the checks rely on, for locations as 0007 made it for the others: a referenced row is
-- never deleted and its key never changes (`keep_referenced` comes from 0007).
create trigger locations_keep_referenced_delete before delete on locations
for each row execute function keep_referenced();
create trigger locations_keep_referenced_key before update of code on locations
for each row when (old.code is distinct from new.code) execute function keep_referenced();

-- TRUNCATE deletes without row triggers: refused for every table whose rows ledger rows refer
-- to through a check per statement.
create trigger lots_no_truncate before truncate on lots
for each statement execute function keep_referenced();
create trigger items_no_truncate before truncate on items
for each statement execute function keep_referenced();
create trigger parties_no_truncate before truncate on parties
for each statement execute function keep_referenced();
create trigger locations_no_truncate before truncate on locations
for each statement execute function keep_referenced();
create trigger shipments_no_truncate before truncate on shipments
for each statement execute function keep_referenced();

-- Production runs name their entry, their output lot and their BOM version; a run's materials
-- name their run. Both are append-only (0004), so only inserts are checked.
alter table production_runs
    drop constraint production_runs_entry_seq_fkey,
    drop constraint production_runs_output_lot_fkey,
    drop constraint production_runs_product_sku_bom_version_fkey;
alter table production_run_materials drop constraint production_run_materials_run_id_fkey;

create function production_runs_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct entry_seq from inserted) n
               where not exists (select 1 from entries e where e.seq = n.entry_seq offset 0)) then
        raise foreign_key_violation using message = 'a production run names an entry that does not exist';
    end if;
    if exists (select 1 from (select distinct output_lot from inserted) n
               where not exists (select 1 from lots l where l.lot = n.output_lot offset 0)) then
        raise foreign_key_violation using message = 'a production run names a lot that does not exist';
    end if;
    if exists (select 1 from (select distinct product_sku, bom_version from inserted) n
               where not exists (select 1 from boms b
                                 where b.product_sku = n.product_sku and b.version = n.bom_version
                                 offset 0)) then
        raise foreign_key_violation using message = 'a production run names a BOM version that does not exist';
    end if;
    return null;
end;
$$;
create trigger production_runs_references after insert on production_runs
referencing new table as inserted for each statement execute function production_runs_references();

create function production_run_materials_references() returns trigger language plpgsql as $$
begin
    if exists (select 1 from (select distinct run_id from inserted) n
               where not exists (select 1 from production_runs r where r.run_id = n.run_id offset 0)) then
        raise foreign_key_violation using message = 'a production run material names a run that does not exist';
    end if;
    return null;
end;
$$;
create trigger production_run_materials_references after insert on production_run_materials
referencing new table as inserted for each statement execute function production_run_materials_references();

-- BOM versions are never deleted and their keys never change (a version once used is
-- fixed; a new recipe is a new version). TRUNCATE of boms stays refused by the foreign key
-- of bom_lines.
create trigger boms_keep_referenced_delete before delete on boms
for each row execute function keep_referenced();
create trigger boms_keep_referenced_key before update of product_sku, version on boms
for each row when ((old.product_sku, old.version) is distinct from (new.product_sku, new.version))
execute function keep_referenced();
