//! Production on PostgreSQL: bills of materials and the run reports the writer stores with
//! each run's entry. A replacement of a BOM locks its row for update; the writer reads the
//! BOMs of its runs for share and marks them used before it commits, so the two never
//! interleave.

use ledger::production::Bom;
use ledger::State;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};
use store::production::{self as decode, RawRun, RawRunMaterial};
use store::{BomPut, ProductionRunRecord, Result, RunFilter, RunReportRow, StoredBom};

use crate::{err, i64_of, limit, ROWS_PER_INSERT};

/// A read-only transaction that sees one snapshot (PostgreSQL's default, read committed, takes
/// a new one per statement), so that a BOM's header and lines agree.
async fn snapshot(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await.map_err(err)?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    Ok(tx)
}

/// A bill of materials and its lines, as read inside `conn`'s transaction.
async fn read_bom(
    conn: &mut PgConnection,
    product_sku: &str,
    version: &str,
    lock: &str,
) -> Result<Option<StoredBom>> {
    let Some(head) = sqlx::query(&format!(
        "select product_sku, version, output_qty, first_run from boms where product_sku = $1 and version = $2 {lock}"
    ))
    .bind(product_sku)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await
    .map_err(err)?
    else {
        return Ok(None);
    };
    let lines = sqlx::query(
        "select material_sku, qty from bom_lines where product_sku = $1 and version = $2 order by idx",
    )
    .bind(product_sku)
    .bind(version)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    bom_of(
        &head,
        lines
            .iter()
            .map(|r| (r.get("material_sku"), r.get("qty")))
            .collect(),
    )
    .map(Some)
}

fn bom_of(head: &PgRow, lines: Vec<(String, i64)>) -> Result<StoredBom> {
    decode::bom(
        head.get("product_sku"),
        head.get("version"),
        head.get("output_qty"),
        head.get("first_run"),
        lines,
    )
}

async fn insert_lines(conn: &mut PgConnection, bom: &Bom) -> Result<()> {
    let lines: Vec<_> = bom.lines.iter().enumerate().collect();
    for chunk in lines.chunks(ROWS_PER_INSERT) {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "insert into bom_lines (product_sku, version, idx, material_sku, qty) ",
        );
        q.push_values(chunk, |mut row, (i, l)| {
            row.push_bind(bom.product.as_str())
                .push_bind(bom.version.as_str())
                .push_bind(i64::try_from(*i).expect("line index fits"))
                .push_bind(l.sku.as_str())
                .push_bind(l.qty.scaled());
        });
        q.build().execute(&mut *conn).await.map_err(err)?;
    }
    Ok(())
}

pub(crate) async fn put_bom(pool: &PgPool, bom: &Bom) -> Result<BomPut> {
    let mut tx = pool.begin().await.map_err(err)?;
    let (product, version) = (bom.product.as_str(), bom.version.as_str());
    // Insert-or-find: a concurrent twin waits for this transaction, then finds the row.
    let inserted = sqlx::query("insert into boms (product_sku, version, output_qty, first_run) values ($1, $2, $3, null) on conflict do nothing")
        .bind(product)
        .bind(version)
        .bind(bom.output_qty.scaled())
        .execute(&mut *tx)
        .await
        .map_err(err)?
        .rows_affected();
    if inserted == 1 {
        insert_lines(&mut tx, bom).await?;
        tx.commit().await.map_err(err)?;
        return Ok(BomPut::Created);
    }
    // The row lock waits out a run that is using this BOM, and then sees it marked used.
    let existing = read_bom(&mut tx, product, version, "for update")
        .await?
        .ok_or_else(|| store::StoreError::Backend("bill of materials vanished".into()))?;
    let outcome = match existing {
        existing if existing.bom == *bom => BomPut::Unchanged(existing),
        existing if existing.first_run.is_some() => BomPut::InUse(existing),
        _ => {
            sqlx::query("update boms set output_qty = $1 where product_sku = $2 and version = $3 and first_run is null")
                .bind(bom.output_qty.scaled())
                .bind(product)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            sqlx::query("delete from bom_lines where product_sku = $1 and version = $2")
                .bind(product)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            insert_lines(&mut tx, bom).await?;
            BomPut::Replaced
        }
    };
    tx.commit().await.map_err(err)?;
    Ok(outcome)
}

pub(crate) async fn bom(
    pool: &PgPool,
    product_sku: &str,
    version: &str,
) -> Result<Option<StoredBom>> {
    let mut tx = snapshot(pool).await?;
    let found = read_bom(&mut tx, product_sku, version, "").await?;
    tx.commit().await.map_err(err)?;
    Ok(found)
}

pub(crate) async fn boms(
    reader: &PgPool,
    after: Option<(String, String)>,
    n: u32,
) -> Result<Vec<StoredBom>> {
    let (after_sku, after_version) = after.unwrap_or_default();
    let mut conn = snapshot(reader).await?;
    let heads = sqlx::query(
        "select product_sku, version, output_qty, first_run from boms
         where (product_sku, version) > ($1, $2) order by product_sku, version limit $3",
    )
    .bind(&after_sku)
    .bind(&after_version)
    .bind(limit(n))
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let lines = sqlx::query(
        "select l.product_sku, l.version, l.material_sku, l.qty from bom_lines l
         join (select product_sku, version from boms where (product_sku, version) > ($1, $2)
               order by product_sku, version limit $3) b
           on b.product_sku = l.product_sku and b.version = l.version
         order by l.product_sku, l.version, l.idx",
    )
    .bind(&after_sku)
    .bind(&after_version)
    .bind(limit(n))
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let mut lines = lines.iter().peekable();
    let mut out = Vec::with_capacity(heads.len());
    for h in &heads {
        let (p, v): (String, String) = (h.get("product_sku"), h.get("version"));
        let mut mine = Vec::new();
        while let Some(l) = lines.next_if(|l| {
            l.get::<String, _>("product_sku") == p && l.get::<String, _>("version") == v
        }) {
            mine.push((l.get("material_sku"), l.get("qty")));
        }
        out.push(bom_of(h, mine)?);
    }
    conn.commit().await.map_err(err)?;
    Ok(out)
}

fn raw_run(r: &PgRow) -> RawRun {
    RawRun {
        run_id: r.get("run_id"),
        entry_seq: r.get("entry_seq"),
        reversed_by: r.get("reversed_by"),
        date: r.get("date"),
        product_sku: r.get("product_sku"),
        bom_version: r.get("bom_version"),
        output_lot: r.get("output_lot"),
        good_qty: r.get("good_qty"),
        scrap_qty: r.get("scrap_qty"),
        material_cost: r.get("material_cost"),
        labor_cost: r.get("labor_cost"),
        overhead_cost: r.get("overhead_cost"),
        total_cost: r.get("total_cost"),
        unit_cost: r.get("unit_cost"),
    }
}

/// The materials of a page's runs, each run's looked up by its key (lateral, behind
/// `offset 0`): with `where run_id in (...)`, where the table has no statistics (this server
/// may never analyse its tables), the planner read every material of every run for each page
/// at 50 000 runs (at 10M postings it chose the index anyway). `tests/open.rs` holds the plan
/// to the primary key.
pub const RUN_MATERIALS_SQL: &str =
    "select m.run_id, m.material_sku, m.standard_qty, m.actual_qty, m.actual_cost
     from unnest($1::text[]) as k (run_id)
     cross join lateral (
         select * from production_run_materials x where x.run_id = k.run_id offset 0
     ) m
     order by m.run_id, m.idx";

/// A page of production runs in entry order after `$1`, with only the filters asked for
/// (`run_id = $2`, then `product_sku = $n`) and the limit last: one statement per combination
/// (see [`crate::push_filters`]). The one statement for all read every run after the cursor
/// by a bitmap and sorted them for each page once planned generically, 20-30 ms a page of 500
/// at 130 000 runs, where the index in entry order takes 0.5 ms. `tests/open.rs` holds the
/// generic plan to that index.
pub fn runs_page_sql(by_run_id: bool, by_product: bool) -> String {
    let mut sql = String::from(
        "select r.*, (select e.seq from entries e where e.reverses = r.entry_seq) as reversed_by
         from production_runs r
         where r.entry_seq > $1",
    );
    let limit = crate::push_filters(
        &mut sql,
        1,
        &[
            (by_run_id, "r.run_id = ?"),
            (by_product, "r.product_sku = ?"),
        ],
    );
    sql.push_str(&format!(" order by r.entry_seq limit ${limit}"));
    sql
}

pub(crate) async fn runs(
    reader: &PgPool,
    f: &RunFilter,
    after: Option<u64>,
    n: u32,
) -> Result<Vec<RunReportRow>> {
    let mut conn = snapshot(reader).await?;
    let sql = runs_page_sql(f.run_id.is_some(), f.product_sku.is_some());
    let mut q = sqlx::query(&sql).bind(after.map_or(0, i64_of));
    for value in [f.run_id.as_deref(), f.product_sku.as_deref()]
        .into_iter()
        .flatten()
    {
        q = q.bind(value);
    }
    let rows = q.bind(limit(n)).fetch_all(&mut *conn).await.map_err(err)?;
    let raw: Vec<RawRun> = rows.iter().map(raw_run).collect();
    let mut materials = Vec::new();
    if !raw.is_empty() {
        let ids: Vec<&str> = raw.iter().map(|r| r.run_id.as_str()).collect();
        let rows = sqlx::query(RUN_MATERIALS_SQL)
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
        materials = rows
            .iter()
            .map(|r| RawRunMaterial {
                run_id: r.get("run_id"),
                material_sku: r.get("material_sku"),
                standard_qty: r.get("standard_qty"),
                actual_qty: r.get("actual_qty"),
                actual_cost: r.get("actual_cost"),
            })
            .collect();
    }
    conn.commit().await.map_err(err)?;
    decode::runs(raw, materials)
}

/// Loads the bills of materials a decision needs into `state`.
pub(crate) async fn load_boms(
    conn: &mut PgConnection,
    wanted: &std::collections::BTreeSet<(ledger::Sku, ledger::BomVersion)>,
    state: &mut State,
) -> Result<()> {
    for (product, version) in wanted {
        // For share: a replacement of this BOM waits until the batch commits, and then finds
        // it marked used.
        let found = read_bom(conn, product.as_str(), version.as_str(), "for share").await?;
        state.put_bom(product.clone(), version.clone(), found.map(|b| b.bom));
    }
    Ok(())
}

/// Stores the reports of a batch's runs and marks each run's BOM version used: multi-row
/// inserts of a fixed size for the runs and their materials (an import writes thousands of
/// runs a batch; one statement per run cost about 150 us each), then one update per BOM
/// version the batch used, naming the batch's first run of it.
pub(crate) async fn write_runs(
    conn: &mut PgConnection,
    records: &[ProductionRunRecord],
) -> Result<()> {
    // 13 columns a row: 100 rows stay far below the bound-parameter limit.
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "insert into production_runs (run_id, entry_seq, date, product_sku, bom_version, output_lot, good_qty, scrap_qty,
             material_cost, labor_cost, overhead_cost, total_cost, unit_cost) ",
        );
        q.push_values(chunk, |mut row, rec| {
            let r = &rec.report;
            row.push_bind(r.run_id.as_str())
                .push_bind(i64_of(rec.entry_seq))
                .push_bind(r.date.to_string())
                .push_bind(r.product.as_str())
                .push_bind(r.bom_version.as_str())
                .push_bind(r.output_lot.as_str())
                .push_bind(r.good_qty.scaled())
                .push_bind(r.scrap_qty.scaled())
                .push_bind(r.material_cost.scaled())
                .push_bind(r.labor_cost.scaled())
                .push_bind(r.overhead_cost.scaled())
                .push_bind(r.total_cost.scaled())
                .push_bind(r.unit_cost.scaled());
        });
        q.build().execute(&mut *conn).await.map_err(err)?;
    }
    let materials: Vec<_> = records
        .iter()
        .flat_map(|rec| {
            let run = rec.report.run_id.as_str();
            rec.report
                .materials
                .iter()
                .enumerate()
                .map(move |(i, m)| (run, i, m))
        })
        .collect();
    for chunk in materials.chunks(ROWS_PER_INSERT) {
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "insert into production_run_materials (run_id, idx, material_sku, standard_qty, actual_qty, actual_cost) ",
        );
        q.push_values(chunk, |mut row, (run, i, m)| {
            row.push_bind(*run)
                .push_bind(i64::try_from(*i).expect("material index fits"))
                .push_bind(m.sku.as_str())
                .push_bind(m.standard_qty.scaled())
                .push_bind(m.actual_qty.scaled())
                .push_bind(m.actual_cost.scaled());
        });
        q.build().execute(&mut *conn).await.map_err(err)?;
    }
    for rec in ProductionRunRecord::first_of_each_bom(records) {
        let r = &rec.report;
        sqlx::query("update boms set first_run = $1 where product_sku = $2 and version = $3 and first_run is null")
            .bind(r.run_id.as_str())
            .bind(r.product.as_str())
            .bind(r.bom_version.as_str())
            .execute(&mut *conn)
            .await
            .map_err(err)?;
    }
    Ok(())
}
