-- The ledger on SQLite. Quantities are integers at scale 3 and money integers at scale 4, so
-- that every sum is exact. Dates are ISO 8601 text, which sorts as dates do.

-- One row: the head of the hash chain, the period close and the base currency.
create table ledger (
    id integer primary key check (id = 1),
    seq integer not null check (seq >= 0),
    hash text not null check (length(hash) = 64),
    closed_through text,
    base_currency text not null check (length(base_currency) = 3)
);
insert into ledger (id, seq, hash, closed_through, base_currency)
values (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', null, 'CNY');

create table items (
    sku text primary key,
    name text not null,
    kind text not null check (kind in ('material', 'product', 'supply')),
    unit text not null,
    decimals integer not null check (decimals between 0 and 3),
    shelf_life_days integer check (shelf_life_days > 0)
);

create table parties (
    code text primary key,
    name text not null,
    kind text not null check (kind in ('supplier', 'donor', 'channel', 'manufacturer', 'hospital', 'subdistrict', 'community')),
    country text,
    city text,
    parent text references parties (code)
);

create table locations (
    code text primary key,
    name text not null
);

-- The journal. seq is gapless and gives the chain its order.
create table entries (
    seq integer primary key check (seq >= 1),
    date text not null,
    kind text not null,
    document text not null,
    actor text not null,
    reverses integer references entries (seq),
    memo text not null,
    hash text not null,
    recorded_at text not null
);
-- An entry can be reversed once: a second check of the domain's AlreadyReversed.
create unique index entries_reverses on entries (reverses) where reverses is not null;
create index entries_document on entries (document);

create table lots (
    lot text primary key,
    sku text not null references items (sku),
    origin_kind text not null,
    origin_doc text not null,
    origin_seq integer not null references entries (seq),
    expires_on text,
    source text
);
create index lots_sku on lots (sku);

create table postings (
    seq integer not null references entries (seq),
    idx integer not null,
    account text not null,
    sku text not null,
    lot text not null references lots (lot),
    qty integer not null,
    value integer not null,
    primary key (seq, idx)
) without rowid;
create index postings_lot on postings (lot);

-- Balances per (account, lot), kept in the same transaction as the postings. A guarded
-- account (stock:, transit:) can never go negative: the second check of invariant 2.
create table balances (
    account text not null,
    lot text not null references lots (lot),
    sku text not null,
    qty integer not null,
    value integer not null,
    guarded integer not null check (guarded in (0, 1)),
    primary key (account, lot),
    check (guarded = 0 or (qty >= 0 and value >= 0))
) without rowid;
create index balances_account_sku on balances (account, sku);

-- Documents as posted, for reads and for telling a replay from a conflicting reuse of an id.
create table documents (
    pos integer primary key autoincrement,
    namespace text not null,
    id text not null,
    kind text not null,
    body_hash text not null,
    body text not null,
    response text not null,
    entry_seq integer references entries (seq),
    unique (namespace, id)
);
create index documents_kind on documents (kind, pos);

create table idempotency (
    actor text not null,
    key text not null,
    request_hash text not null,
    status integer not null,
    response text not null,
    primary key (actor, key)
);

-- Entries and postings are append-only (invariant 3): only a deliberate act outside the
-- service, dropping these triggers, can change them.
create trigger entries_append_only_update before update on entries
begin select raise(abort, 'entries are append-only'); end;
create trigger entries_append_only_delete before delete on entries
begin select raise(abort, 'entries are append-only'); end;
create trigger postings_append_only_update before update on postings
begin select raise(abort, 'postings are append-only'); end;
create trigger postings_append_only_delete before delete on postings
begin select raise(abort, 'postings are append-only'); end;
