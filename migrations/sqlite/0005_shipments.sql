-- Shipments: frontline batches and overseas donations, from dispatch to their last
-- acknowledgement or closing. The journal says where goods are (transit:<shipment>); these
-- tables say for whom they are meant and what became of them per destination and lot, which
-- an acknowledgement is decided against. The writer keeps them in the same transaction as
-- the postings that move transit; the checks below are a second check of the domain's rules.

-- One row per shipment, with a donation's declared value kept queryable (as declared, and in
-- the base currency at scale 4) for the donations report. status is derived by the domain
-- and stored so that lists filter on it.
create table shipments (
    id text primary key,
    kind text not null check (kind in ('batch', 'donation')),
    date text not null,
    from_location text not null references locations (code),
    recipient text references parties (code),
    country text,
    declared_value integer check (declared_value >= 0),
    currency text check (length(currency) = 3),
    fx_rate text,
    declared_value_base integer check (declared_value_base >= 0),
    status text not null check (status in ('dispatched', 'partly-acknowledged', 'acknowledged', 'closed')),
    dispatch_seq integer not null unique references entries (seq),
    closed_on text,
    close_reason text,
    close_seq integer unique references entries (seq),
    -- A donation has its hospital and declared value; a batch has neither.
    check ((kind = 'donation') = (recipient is not null)),
    check ((kind = 'donation') = (declared_value is not null and currency is not null and fx_rate is not null and declared_value_base is not null)),
    -- Closed exactly when a closing entry wrote off what was outstanding.
    check ((status = 'closed') = (close_seq is not null)),
    check ((close_seq is null) = (closed_on is null) and (close_seq is null) = (close_reason is null))
);
create index shipments_kind_status on shipments (kind, status, dispatch_seq);

-- What each destination was sent of each lot, and what became of it: received
-- (acknowledged), damaged, or written off as short when the shipment was closed. Quantities
-- at scale 3, the dispatched value (ledger cost) at scale 4. pos keeps the dispatch order,
-- which acknowledgements that name no lot follow.
create table shipment_lines (
    shipment_id text not null references shipments (id),
    pos integer not null check (pos >= 0),
    destination text not null references parties (code),
    sku text not null references items (sku),
    lot text not null references lots (lot),
    dispatched_qty integer not null check (dispatched_qty > 0),
    acknowledged_qty integer not null check (acknowledged_qty >= 0),
    damaged_qty integer not null check (damaged_qty >= 0),
    short_qty integer not null check (short_qty >= 0),
    dispatched_value integer not null check (dispatched_value >= 0),
    primary key (shipment_id, destination, lot),
    unique (shipment_id, pos),
    -- Nothing is acknowledged, damaged or written off that was not sent.
    check (acknowledged_qty + damaged_qty + short_qty <= dispatched_qty)
) without rowid;
create index shipment_lines_destination on shipment_lines (destination, shipment_id);

-- What was dispatched never changes once recorded: only acknowledgements and closing move on.
create trigger shipment_lines_dispatch_fixed before update of shipment_id, pos, destination, sku, lot, dispatched_qty, dispatched_value on shipment_lines
begin select raise(abort, 'a shipment line''s dispatch is append-only'); end;
