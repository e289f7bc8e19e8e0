//! Shipments on SQLite: loading a shipment with its lines into the writer's state, writing
//! what a batch changed, and the reads behind `GET /shipments` and `verify`.

use ledger::shipment::ShipmentChange;
use ledger::Shipment;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use store::decode::{self, RawShipment, RawShipmentLine};
use store::{Result, ShipmentFilter};

use crate::write::Script;
use crate::{err, i64_of};

/// Line rows per multi-row insert: 10 columns x 100 rows stays far below SQLite's limit.
const LINES_PER_INSERT: usize = 100;
/// Shipment rows per multi-row upsert: 15 columns x 50 rows.
const SHIPMENTS_PER_INSERT: usize = 50;

fn raw_shipment(r: &SqliteRow) -> RawShipment {
    RawShipment {
        id: r.get("id"),
        kind: r.get("kind"),
        date: r.get("date"),
        from_location: r.get("from_location"),
        recipient: r.get("recipient"),
        country: r.get("country"),
        declared_value: r.get("declared_value"),
        currency: r.get("currency"),
        fx_rate: r.get("fx_rate"),
        declared_value_base: r.get("declared_value_base"),
        dispatch_seq: r.get("dispatch_seq"),
        closed_on: r.get("closed_on"),
        close_reason: r.get("close_reason"),
        close_seq: r.get("close_seq"),
    }
}

fn raw_line(r: &SqliteRow) -> RawShipmentLine {
    RawShipmentLine {
        destination: r.get("destination"),
        sku: r.get("sku"),
        lot: r.get("lot"),
        dispatched_qty: r.get("dispatched_qty"),
        acknowledged_qty: r.get("acknowledged_qty"),
        damaged_qty: r.get("damaged_qty"),
        short_qty: r.get("short_qty"),
        dispatched_value: r.get("dispatched_value"),
    }
}

/// Shipments with their lines in one statement, so that a page is one consistent snapshot:
/// one shipment by id, or a filtered page in dispatch order after a dispatch seq.
pub(crate) async fn select(
    conn: &mut SqliteConnection,
    id: Option<&str>,
    f: &ShipmentFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<Shipment>> {
    let rows = sqlx::query(
        "with page as (
             select s.* from shipments s
             where (?1 is null or s.id = ?1) and (?2 is null or s.kind = ?2) and (?3 is null or s.status = ?3)
               and (?4 is null or exists (select 1 from shipment_lines d where d.shipment_id = s.id and d.destination = ?4))
               and s.dispatch_seq > ?5
             order by s.dispatch_seq limit ?6)
         select page.id, page.kind, page.date, page.from_location, page.recipient, page.country,
                page.declared_value, page.currency, page.fx_rate, page.declared_value_base,
                page.dispatch_seq, page.closed_on, page.close_reason, page.close_seq,
                l.destination, l.sku, l.lot, l.dispatched_qty, l.acknowledged_qty, l.damaged_qty,
                l.short_qty, l.dispatched_value
         from page join shipment_lines l on l.shipment_id = page.id
         order by page.dispatch_seq, l.pos",
    )
    .bind(id)
    .bind(f.kind.as_deref())
    .bind(f.status.as_deref())
    .bind(f.destination.as_deref())
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    assemble(&rows)
}

/// Shipments by id with their lines, in one statement (the writer loads a batch's at once).
pub(crate) async fn select_ids(conn: &mut SqliteConnection, ids: &[&str]) -> Result<Vec<Shipment>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "select s.id, s.kind, s.date, s.from_location, s.recipient, s.country,
                s.declared_value, s.currency, s.fx_rate, s.declared_value_base,
                s.dispatch_seq, s.closed_on, s.close_reason, s.close_seq,
                l.destination, l.sku, l.lot, l.dispatched_qty, l.acknowledged_qty, l.damaged_qty,
                l.short_qty, l.dispatched_value
         from shipments s join shipment_lines l on l.shipment_id = s.id
         where s.id in (",
    );
    let mut sep = q.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    q.push(") order by s.dispatch_seq, l.pos");
    let rows = q.build().fetch_all(&mut *conn).await.map_err(err)?;
    assemble(&rows)
}

/// Shipments from rows of a shipment and one of its lines, ordered by shipment.
fn assemble(rows: &[SqliteRow]) -> Result<Vec<Shipment>> {
    let mut out = Vec::new();
    let mut current: Option<(RawShipment, Vec<RawShipmentLine>)> = None;
    for r in rows {
        let rid: String = r.get("id");
        if current.as_ref().is_some_and(|(s, _)| s.id != rid) {
            let (s, lines) = current.take().expect("checked");
            out.push(decode::shipment(s, lines)?);
        }
        current
            .get_or_insert_with(|| (raw_shipment(r), Vec::new()))
            .1
            .push(raw_line(r));
    }
    if let Some((s, lines)) = current {
        out.push(decode::shipment(s, lines)?);
    }
    Ok(out)
}

/// Writes what a batch changed: each shipment's row (created, or its status and closing
/// updated) and its touched lines at their new absolute quantities, many rows a statement.
pub(crate) fn write<'a>(script: &mut Script<'a>, changes: &'a [ShipmentChange]) {
    for chunk in changes.chunks(SHIPMENTS_PER_INSERT) {
        let q = script.statement(
            "insert into shipments (id, kind, date, from_location, recipient, country, declared_value, currency, fx_rate, declared_value_base, status, dispatch_seq, closed_on, close_reason, close_seq) ",
            chunk.len() == SHIPMENTS_PER_INSERT,
        );
        q.push_values(chunk, |mut row, c| {
            let s = &c.shipment;
            let declared = s.declared.as_ref();
            row.push_bind(s.id.as_str())
                .push_bind(s.kind.as_str())
                .push_bind(s.date.to_string())
                .push_bind(s.from_location.as_str())
                .push_bind(s.recipient.as_ref().map(|r| r.as_str()))
                .push_bind(s.country.as_deref())
                .push_bind(declared.map(|d| d.value.scaled()))
                .push_bind(declared.map(|d| d.currency.as_str()))
                .push_bind(declared.map(|d| d.fx_rate.to_string()))
                .push_bind(declared.map(|d| d.base_value.scaled()))
                .push_bind(s.status().as_str())
                .push_bind(i64_of(s.dispatch_seq))
                .push_bind(s.closure.as_ref().map(|x| x.date.to_string()))
                .push_bind(s.closure.as_ref().map(|x| x.reason.as_str()))
                .push_bind(s.closure.as_ref().map(|x| i64_of(x.seq)));
        });
        q.push(" on conflict (id) do update set status = excluded.status, closed_on = excluded.closed_on, close_reason = excluded.close_reason, close_seq = excluded.close_seq");
    }
    let touched: Vec<(&ledger::Shipment, usize)> = changes
        .iter()
        .flat_map(|c| c.touched.iter().map(move |&pos| (&c.shipment, pos)))
        .collect();
    for chunk in touched.chunks(LINES_PER_INSERT) {
        let q = script.statement(
            "insert into shipment_lines (shipment_id, pos, destination, sku, lot, dispatched_qty, acknowledged_qty, damaged_qty, short_qty, dispatched_value) ",
            chunk.len() == LINES_PER_INSERT,
        );
        q.push_values(chunk, |mut row, &(s, pos)| {
            let l = &s.lines[pos];
            row.push_bind(s.id.as_str())
                .push_bind(i64::try_from(pos).expect("line index fits"))
                .push_bind(l.destination.as_str())
                .push_bind(l.sku.as_str())
                .push_bind(l.lot.as_str())
                .push_bind(l.dispatched.scaled())
                .push_bind(l.acknowledged.scaled())
                .push_bind(l.damaged.scaled())
                .push_bind(l.short.scaled())
                .push_bind(l.dispatched_value.scaled());
        });
        q.push(" on conflict (shipment_id, destination, lot) do update set acknowledged_qty = excluded.acknowledged_qty, damaged_qty = excluded.damaged_qty, short_qty = excluded.short_qty");
    }
}

/// Per shipment and lot, outstanding (dispatched less acknowledged, damaged and short) against
/// the `transit:` balance, both ways: lines without a balance and balances without lines, as
/// (shipment, lot, outstanding, in transit), read by a snapshot (`journal.rs`). One grouping
/// over both tables: SQLite runs a full outer join of two grouped subqueries as a nested loop,
/// quadratic in the number of shipment lines. Only lines with something outstanding are
/// grouped (a line adds nothing to its group's sum otherwise, and a group it alone made would
/// sum to zero, which is what an absent group counts as), and the transit balances are read as
/// a range of the primary key (`like` is case-insensitive, so cannot use it): at 1.09M
/// postings this took 62 ms where grouping every line and scanning every balance took 370.
pub(crate) const MISMATCHES_SQL: &str = "select shipment, lot, sum(oq) as oq, sum(tq) as tq from (
         select shipment_id as shipment, lot,
                dispatched_qty - acknowledged_qty - damaged_qty - short_qty as oq, 0 as tq
         from shipment_lines
         where dispatched_qty - acknowledged_qty - damaged_qty - short_qty <> 0
         union all
         -- ';' is the character after ':', so this is every account that starts 'transit:'.
         select substr(account, 9), lot, 0, qty from balances
         where account >= 'transit:' and account < 'transit;' and qty <> 0)
     group by shipment, lot
     having sum(oq) <> sum(tq)
     order by 1, 2";

/// Documents of one kind made under one shipment, in recorded order: from the shipment's
/// entries (its dispatch, acknowledgements and closing, which carry its id) to their
/// documents, whatever the ledger's size. The join's order and indexes are named: without
/// statistics SQLite read every document of the kind in order instead, keeping those whose
/// entry carries the id (43 ms a page at 12 000 acknowledgements). The entries' index holds
/// the shipments' kinds of entry only (migration 0009), and SQLite takes a partial index only
/// where the query repeats its terms: the `kind in (...)` is the index's, word for word.
pub(crate) const DOCUMENTS_FOR_SQL: &str = "select d.* from entries e indexed by entries_shipment
     cross join documents d indexed by documents_entry
     where e.document = ?2 and e.kind in ('dispatch', 'acknowledgement', 'close')
       and d.entry_seq = e.seq and d.kind = ?1 and d.pos > ?3
     order by d.pos limit ?4";

/// Documents of one kind made under one shipment, in recorded order.
pub(crate) async fn documents_for(
    conn: &mut SqliteConnection,
    kind: &str,
    document: &str,
    after: Option<u64>,
    limit: i64,
) -> Result<Vec<(u64, store::DocumentRecord)>> {
    let rows = sqlx::query(DOCUMENTS_FOR_SQL)
        .bind(kind)
        .bind(document)
        .bind(after.map_or(0, i64_of))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?;
    rows.iter()
        .map(|r| Ok((decode::seq(r.get("pos")), crate::document_row(r)?)))
        .collect()
}
