-- The ledger on PostgreSQL, the same schema as on SQLite. Quantities are integers at scale 3
-- and money integers at scale 4, so that every sum is exact. Dates are ISO 8601 text, which
-- sorts as dates do. Identifiers (skus, codes, lots, accounts) compare byte-wise
-- (collate "C"), as SQLite's binary collation does, so that pages come in the same order on
-- both backends whatever the database's default collation.

-- One row: the head of the hash chain, the period close and the base currency. Writers lock
-- this row (select ... for update): the single serialised write path across processes.
create table ledger (
    id bigint primary key check (id = 1),
    seq bigint not null check (seq >= 0),
    hash text not null check (length(hash) = 64),
    closed_through text,
    base_currency text not null check (length(base_currency) = 3)
);
insert into ledger (id, seq, hash, closed_through, base_currency)
values (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', null, 'CNY');

-- Items: the materials, products and supplies that postings move.
create table items (
    sku text collate "C" primary key,
    name text not null,
    kind text not null check (kind in ('material', 'product', 'supply')),
    unit text not null,
    decimals bigint not null check (decimals between 0 and 3),
    shelf_life_days bigint check (shelf_life_days > 0)
);

-- Parties: whom goods come from or go to; a community's parent is its subdistrict.
create table parties (
    code text collate "C" primary key,
    name text not null,
    kind text not null check (kind in ('supplier', 'donor', 'channel', 'manufacturer', 'hospital', 'subdistrict', 'community')),
    country text,
    city text,
    parent text collate "C" references parties (code)
);

-- Locations: where stock is held (the stock:<location> accounts).
create table locations (
    code text collate "C" primary key,
    name text not null
);

-- The journal. seq is gapless and gives the chain its order.
create table entries (
    seq bigint primary key check (seq >= 1),
    date text not null,
    kind text not null,
    document text not null,
    actor text not null,
    reverses bigint references entries (seq),
    memo text not null,
    hash text not null,
    recorded_at text not null
);
-- An entry can be reversed once: a second check of the domain's AlreadyReversed.
create unique index entries_reverses on entries (reverses) where reverses is not null;
create index entries_document on entries (document);

-- Lots: every unit of stock belongs to exactly one lot of one item, created by one entry.
create table lots (
    lot text collate "C" primary key,
    sku text collate "C" not null references items (sku),
    origin_kind text not null,
    origin_doc text not null,
    origin_seq bigint not null references entries (seq),
    expires_on text,
    source text
);
create index lots_sku on lots (sku);

-- Postings: the lines of each entry, in order; what the hash chain and balances are made of.
create table postings (
    seq bigint not null references entries (seq),
    idx bigint not null,
    account text collate "C" not null,
    sku text collate "C" not null,
    lot text collate "C" not null references lots (lot),
    qty bigint not null,
    value bigint not null,
    primary key (seq, idx)
);
create index postings_lot on postings (lot);

-- Balances per (account, lot), kept in the same transaction as the postings. A guarded
-- account (stock:, transit:) can never go negative: the second check of invariant 2.
create table balances (
    account text collate "C" not null,
    lot text collate "C" not null references lots (lot),
    sku text collate "C" not null,
    qty bigint not null,
    value bigint not null,
    guarded boolean not null,
    primary key (account, lot),
    check ((not guarded) or (qty >= 0 and value >= 0))
);
create index balances_account_sku on balances (account, sku);

-- Documents as posted, for reads and for telling a replay from a conflicting reuse of an id.
-- pos is taken under the ledger row lock, so positions commit in order (with gaps where a
-- transaction rolled back).
create table documents (
    pos bigint generated always as identity primary key,
    namespace text not null,
    id text not null,
    kind text not null,
    body_hash text not null,
    body text not null,
    response text not null,
    entry_seq bigint references entries (seq),
    unique (namespace, id)
);
create index documents_kind on documents (kind, pos);

-- Idempotency keys per actor and the answer each was first given, replayed on a retry.
create table idempotency (
    actor text not null,
    key text not null,
    request_hash text not null,
    status bigint not null,
    response text not null,
    primary key (actor, key)
);

-- Entries and postings are append-only (invariant 3): only a deliberate act outside the
-- service, dropping these triggers, can change them.
create function append_only() returns trigger language plpgsql as $$
begin
    raise exception '% are append-only', tg_table_name;
end;
$$;
create trigger entries_append_only_update before update on entries
for each row execute function append_only();
create trigger entries_append_only_delete before delete on entries
for each row execute function append_only();
create trigger postings_append_only_update before update on postings
for each row execute function append_only();
create trigger postings_append_only_delete before delete on postings
for each row execute function append_only();
