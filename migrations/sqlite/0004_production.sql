-- Production (issue 4): bills of materials, and each production run's report, which the
-- writer stores in the same transaction as the run's entry. Quantities are integers at scale
-- 3 and money integers at scale 4, as in 0001.

-- Bills of materials: the materials that make output_qty of a product, per version. A version
-- may be replaced until a run uses it; first_run names that run, and from then on the version
-- is fixed (the writer sets it in the run's transaction).
create table boms (
    product_sku text not null references items (sku),
    version text not null,
    output_qty integer not null check (output_qty > 0),
    first_run text,
    primary key (product_sku, version)
) without rowid;

-- The materials of each bill of materials, in the order given, each named once.
create table bom_lines (
    product_sku text not null,
    version text not null,
    idx integer not null check (idx >= 0),
    material_sku text not null references items (sku),
    qty integer not null check (qty > 0),
    primary key (product_sku, version, idx),
    unique (product_sku, version, material_sku),
    foreign key (product_sku, version) references boms (product_sku, version)
) without rowid;

-- One row per production run: what the production report lists, so that the report is a
-- query rather than a replay of the journal. entry_seq is the run's entry; a reversal of the
-- run is found through entries.reverses.
create table production_runs (
    run_id text primary key,
    entry_seq integer not null unique references entries (seq),
    date text not null,
    product_sku text not null,
    bom_version text not null,
    output_lot text not null references lots (lot),
    good_qty integer not null check (good_qty > 0),
    scrap_qty integer not null check (scrap_qty >= 0),
    material_cost integer not null check (material_cost >= 0),
    labor_cost integer not null check (labor_cost >= 0),
    overhead_cost integer not null check (overhead_cost >= 0),
    total_cost integer not null check (total_cost = material_cost + labor_cost + overhead_cost),
    unit_cost integer not null check (unit_cost >= 0),
    foreign key (product_sku, bom_version) references boms (product_sku, version)
) without rowid;
create index production_runs_product on production_runs (product_sku);

-- Per run and material: the standard quantity (the BOM scaled to good + scrap output), the
-- quantity actually consumed, and the value the consumed lots gave up.
create table production_run_materials (
    run_id text not null references production_runs (run_id),
    idx integer not null check (idx >= 0),
    material_sku text not null,
    standard_qty integer not null check (standard_qty >= 0),
    actual_qty integer not null check (actual_qty >= 0),
    actual_cost integer not null check (actual_cost >= 0),
    primary key (run_id, idx)
) without rowid;

-- A run's report is a record of its entry and, like the entry, is never changed.
create trigger production_runs_append_only_update before update on production_runs
begin select raise(abort, 'production runs are append-only'); end;
create trigger production_runs_append_only_delete before delete on production_runs
begin select raise(abort, 'production runs are append-only'); end;
create trigger production_run_materials_append_only_update before update on production_run_materials
begin select raise(abort, 'production run materials are append-only'); end;
create trigger production_run_materials_append_only_delete before delete on production_run_materials
begin select raise(abort, 'production run materials are append-only'); end;
