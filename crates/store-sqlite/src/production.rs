//! Production on SQLite: bills of materials (stored through the one writer connection, so a
//! replacement cannot interleave with a run's transaction) and the run reports the writer
//! stores with each run's entry.

use ledger::production::Bom;
use ledger::State;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};
use store::production::{self as decode, RawRun, RawRunMaterial};
use store::{BomPut, ProductionRunRecord, Result, RunFilter, RunReportRow, StoredBom};

use crate::write::Script;
use crate::{err, i64_of, limit, ROWS_PER_INSERT};

/// A bill of materials and its lines, as read inside `conn`'s transaction.
async fn read_bom(
    conn: &mut SqliteConnection,
    product_sku: &str,
    version: &str,
) -> Result<Option<StoredBom>> {
    let Some(head) = sqlx::query(
        "select product_sku, version, output_qty, first_run from boms where product_sku = ? and version = ?",
    )
    .bind(product_sku)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await
    .map_err(err)?
    else {
        return Ok(None);
    };
    let lines = sqlx::query(
        "select material_sku, qty from bom_lines where product_sku = ? and version = ? order by idx",
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

fn bom_of(head: &SqliteRow, lines: Vec<(String, i64)>) -> Result<StoredBom> {
    decode::bom(
        head.get("product_sku"),
        head.get("version"),
        head.get("output_qty"),
        head.get("first_run"),
        lines,
    )
}

async fn insert_lines(conn: &mut SqliteConnection, bom: &Bom) -> Result<()> {
    let lines: Vec<_> = bom.lines.iter().enumerate().collect();
    for chunk in lines.chunks(ROWS_PER_INSERT) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
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

pub(crate) async fn put_bom(writer: &mut SqliteConnection, bom: &Bom) -> Result<BomPut> {
    // The writer connection with the write lock taken at once: the ledger's writer cannot
    // hold a run's transaction open on this BOM meanwhile.
    let mut tx = sqlx::Connection::begin_with(writer, "begin immediate")
        .await
        .map_err(err)?;
    let (product, version) = (bom.product.as_str(), bom.version.as_str());
    let outcome = match read_bom(&mut tx, product, version).await? {
        None => {
            sqlx::query("insert into boms (product_sku, version, output_qty, first_run) values (?, ?, ?, null)")
                .bind(product)
                .bind(version)
                .bind(bom.output_qty.scaled())
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            insert_lines(&mut tx, bom).await?;
            BomPut::Created
        }
        Some(existing) if existing.bom == *bom => BomPut::Unchanged(existing),
        Some(existing) if existing.first_run.is_some() => BomPut::InUse(existing),
        Some(_) => {
            sqlx::query("update boms set output_qty = ? where product_sku = ? and version = ? and first_run is null")
                .bind(bom.output_qty.scaled())
                .bind(product)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            sqlx::query("delete from bom_lines where product_sku = ? and version = ?")
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
    reader: &SqlitePool,
    product_sku: &str,
    version: &str,
) -> Result<Option<StoredBom>> {
    // A read transaction: one snapshot, so that the header and its lines agree.
    let mut tx = reader.begin().await.map_err(err)?;
    let found = read_bom(&mut tx, product_sku, version).await?;
    tx.commit().await.map_err(err)?;
    Ok(found)
}

pub(crate) async fn boms(
    reader: &SqlitePool,
    after: Option<(String, String)>,
    n: u32,
) -> Result<Vec<StoredBom>> {
    let (after_sku, after_version) = after.unwrap_or_default();
    // A read transaction: one snapshot, so that the headers and their lines agree.
    let mut conn = reader.begin().await.map_err(err)?;
    let heads = sqlx::query(
        "select product_sku, version, output_qty, first_run from boms
         where (product_sku, version) > (?, ?) order by product_sku, version limit ?",
    )
    .bind(&after_sku)
    .bind(&after_version)
    .bind(limit(n))
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let lines = sqlx::query(
        "select l.product_sku, l.version, l.material_sku, l.qty from bom_lines l
         join (select product_sku, version from boms where (product_sku, version) > (?, ?)
               order by product_sku, version limit ?) b
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

fn raw_run(r: &SqliteRow) -> RawRun {
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

pub(crate) async fn runs(
    reader: &SqlitePool,
    f: &RunFilter,
    after: Option<u64>,
    n: u32,
) -> Result<Vec<RunReportRow>> {
    let mut conn = reader.begin().await.map_err(err)?;
    let rows = sqlx::query(
        "select r.*, (select e.seq from entries e where e.reverses = r.entry_seq) as reversed_by
         from production_runs r
         where r.entry_seq > ?1 and (?2 is null or r.run_id = ?2) and (?3 is null or r.product_sku = ?3)
         order by r.entry_seq limit ?4",
    )
    .bind(after.map_or(0, i64_of))
    .bind(f.run_id.as_deref())
    .bind(f.product_sku.as_deref())
    .bind(limit(n))
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let raw: Vec<RawRun> = rows.iter().map(raw_run).collect();
    let mut materials = Vec::new();
    if !raw.is_empty() {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "select run_id, material_sku, standard_qty, actual_qty, actual_cost from production_run_materials where run_id in (",
        );
        let mut ids = q.separated(", ");
        for r in &raw {
            ids.push_bind(r.run_id.as_str());
        }
        q.push(") order by run_id, idx");
        let rows = q.build().fetch_all(&mut *conn).await.map_err(err)?;
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
    conn: &mut SqliteConnection,
    wanted: &std::collections::BTreeSet<(ledger::Sku, ledger::BomVersion)>,
    state: &mut State,
) -> Result<()> {
    for (product, version) in wanted {
        let found = read_bom(conn, product.as_str(), version.as_str()).await?;
        state.put_bom(product.clone(), version.clone(), found.map(|b| b.bom));
    }
    Ok(())
}

/// Stores the reports of a batch's runs and marks each run's BOM version used: multi-row
/// inserts of a fixed size for the runs and their materials (an import writes thousands of
/// runs a batch; one statement per run cost about 150 us each), then one update per BOM
/// version the batch used, naming the batch's first run of it.
pub(crate) fn write_runs<'a>(script: &mut Script<'a>, records: &'a [ProductionRunRecord]) {
    // 13 columns a row: 100 rows stay far below the bound-parameter limit.
    for chunk in records.chunks(ROWS_PER_INSERT) {
        let q = script.statement(
            "insert into production_runs (run_id, entry_seq, date, product_sku, bom_version, output_lot, good_qty, scrap_qty,
             material_cost, labor_cost, overhead_cost, total_cost, unit_cost) ",
            chunk.len() == ROWS_PER_INSERT,
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
        let q = script.statement(
            "insert into production_run_materials (run_id, idx, material_sku, standard_qty, actual_qty, actual_cost) ",
            chunk.len() == ROWS_PER_INSERT,
        );
        q.push_values(chunk, |mut row, (run, i, m)| {
            row.push_bind(*run)
                .push_bind(i64::try_from(*i).expect("material index fits"))
                .push_bind(m.sku.as_str())
                .push_bind(m.standard_qty.scaled())
                .push_bind(m.actual_qty.scaled())
                .push_bind(m.actual_cost.scaled());
        });
    }
    for rec in ProductionRunRecord::first_of_each_bom(records) {
        let r = &rec.report;
        script
            .statement("update boms set first_run = ", false)
            .push_bind(r.run_id.as_str())
            .push(" where product_sku = ")
            .push_bind(r.product.as_str())
            .push(" and version = ")
            .push_bind(r.bom_version.as_str())
            .push(" and first_run is null");
    }
}
