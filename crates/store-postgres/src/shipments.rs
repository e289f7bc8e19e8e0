//! Shipments on PostgreSQL: loading a shipment with its lines into the writer's state, writing
//! what a batch changed, and the reads behind `GET /shipments` and `verify`.

use ledger::shipment::ShipmentChange;
use ledger::Shipment;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use store::decode::{self, RawShipment, RawShipmentLine};
use store::{Result, ShipmentFilter, ShipmentMismatch};

use crate::{err, i64_of};

fn raw_shipment(r: &PgRow) -> RawShipment {
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

fn raw_line(r: &PgRow) -> RawShipmentLine {
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
/// one shipment by id, or a filtered page in dispatch order after `$1`, with only the filters
/// asked for (id, kind, status, destination, in that order, then the limit): one statement per
/// combination (see [`crate::push_filters`]). The one statement for all, planned generically,
/// read every shipment after the cursor and sorted them for each page (the donations report
/// at 10M postings, 35 ms a page). The lines are looked up shipment by shipment (lateral,
/// behind `offset 0`): joined plainly, the planner without statistics (this server may never
/// analyse its tables) hashed every line of every shipment for each page, 80 ms a page at
/// 150 000 lines, and the in-transit report took 45 s at 10M postings. A page of a kind's
/// shipments comes in order from the index of kind and dispatch order (migration 0010) when
/// its reads are planned by index only, as `Store::shipments` plans them
/// (`plan_reads_by_index`). `tests/open.rs` holds the plans.
pub fn page_sql(by_id: bool, by_kind: bool, by_status: bool, by_destination: bool) -> String {
    let mut sql = String::from(
        "with page as (
         select s.* from shipments s
         where s.dispatch_seq > $1",
    );
    let limit = crate::push_filters(
        &mut sql,
        1,
        &[
            (by_id, "s.id = ?"),
            (by_kind, "s.kind = ?"),
            (by_status, "s.status = ?"),
            (
                by_destination,
                "exists (select 1 from shipment_lines d where d.shipment_id = s.id and d.destination = ?)",
            ),
        ],
    );
    sql.push_str(&format!(
        " order by s.dispatch_seq limit ${limit})
     select page.id, page.kind, page.date, page.from_location, page.recipient, page.country,
            page.declared_value, page.currency, page.fx_rate, page.declared_value_base,
            page.dispatch_seq, page.closed_on, page.close_reason, page.close_seq,
            l.destination, l.sku, l.lot, l.dispatched_qty, l.acknowledged_qty, l.damaged_qty,
            l.short_qty, l.dispatched_value
     from page
     cross join lateral (
         select * from shipment_lines x where x.shipment_id = page.id offset 0
     ) l
     order by page.dispatch_seq, l.pos"
    ));
    sql
}

pub(crate) async fn select(
    conn: &mut PgConnection,
    id: Option<&str>,
    f: &ShipmentFilter,
    after: i64,
    limit: i64,
) -> Result<Vec<Shipment>> {
    let (kind, status, destination) = (
        f.kind.as_deref(),
        f.status.as_deref(),
        f.destination.as_deref(),
    );
    let sql = page_sql(
        id.is_some(),
        kind.is_some(),
        status.is_some(),
        destination.is_some(),
    );
    let mut q = sqlx::query(&sql).bind(after);
    for value in [id, kind, status, destination].into_iter().flatten() {
        q = q.bind(value);
    }
    let rows = q.bind(limit).fetch_all(&mut *conn).await.map_err(err)?;
    assemble(&rows)
}

/// Shipments by id with their lines, in one statement (the writer loads a batch's at once).
/// Each shipment, then its lines, is looked up by key (lateral, behind `offset 0`): joined
/// plainly, the planner may hash every line of every shipment for each batch; and with
/// `where s.id = any($1)`, where the tables have no statistics, it scanned every shipment
/// for a batch's 1 024 ids (in parallel, about 1 s a batch at 390 000 shipments: an import
/// of 97 000 donations took 95 s, against 79 s for 1.3M frontline batches before them).
/// `tests/open.rs` holds the plan to the primary key.
pub const BY_IDS_SQL: &str = "select s.id, s.kind, s.date, s.from_location, s.recipient, s.country,
        s.declared_value, s.currency, s.fx_rate, s.declared_value_base,
        s.dispatch_seq, s.closed_on, s.close_reason, s.close_seq,
        l.destination, l.sku, l.lot, l.dispatched_qty, l.acknowledged_qty, l.damaged_qty,
        l.short_qty, l.dispatched_value
 from unnest($1::text[]) as k (id)
 cross join lateral (select * from shipments x where x.id = k.id offset 0) s
 cross join lateral (
     select * from shipment_lines x where x.shipment_id = s.id offset 0
 ) l
 order by s.dispatch_seq, l.pos";

/// The shipments of `ids`, with their lines (see [`BY_IDS_SQL`]).
pub(crate) async fn select_ids(conn: &mut PgConnection, ids: &[&str]) -> Result<Vec<Shipment>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(BY_IDS_SQL)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?;
    assemble(&rows)
}

/// The line a (shipment, position) pair names.
fn line<'s>(&(s, pos): &(&'s Shipment, usize)) -> &'s ledger::ShipmentLine {
    &s.lines[pos]
}

/// Shipments from rows of a shipment and one of its lines, ordered by shipment.
fn assemble(rows: &[PgRow]) -> Result<Vec<Shipment>> {
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
/// updated) and its touched lines at their new absolute quantities, one statement per table.
pub(crate) async fn write(conn: &mut PgConnection, changes: &[ShipmentChange]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let s: Vec<&Shipment> = changes.iter().map(|c| &c.shipment).collect();
    let id: Vec<&str> = s.iter().map(|x| x.id.as_str()).collect();
    let kind: Vec<&str> = s.iter().map(|x| x.kind.as_str()).collect();
    let date: Vec<String> = s.iter().map(|x| x.date.to_string()).collect();
    let from: Vec<&str> = s.iter().map(|x| x.from_location.as_str()).collect();
    let recipient: Vec<Option<&str>> = s
        .iter()
        .map(|x| x.recipient.as_ref().map(|r| r.as_str()))
        .collect();
    let country: Vec<Option<&str>> = s.iter().map(|x| x.country.as_deref()).collect();
    let declared_value: Vec<Option<i64>> = s
        .iter()
        .map(|x| x.declared.as_ref().map(|d| d.value.scaled()))
        .collect();
    let currency: Vec<Option<&str>> = s
        .iter()
        .map(|x| x.declared.as_ref().map(|d| d.currency.as_str()))
        .collect();
    let fx_rate: Vec<Option<String>> = s
        .iter()
        .map(|x| x.declared.as_ref().map(|d| d.fx_rate.to_string()))
        .collect();
    let base: Vec<Option<i64>> = s
        .iter()
        .map(|x| x.declared.as_ref().map(|d| d.base_value.scaled()))
        .collect();
    let status: Vec<&str> = s.iter().map(|x| x.status().as_str()).collect();
    let dispatch_seq: Vec<i64> = s.iter().map(|x| i64_of(x.dispatch_seq)).collect();
    let closed_on: Vec<Option<String>> = s
        .iter()
        .map(|x| x.closure.as_ref().map(|c| c.date.to_string()))
        .collect();
    let close_reason: Vec<Option<&str>> = s
        .iter()
        .map(|x| x.closure.as_ref().map(|c| c.reason.as_str()))
        .collect();
    let close_seq: Vec<Option<i64>> = s
        .iter()
        .map(|x| x.closure.as_ref().map(|c| i64_of(c.seq)))
        .collect();
    sqlx::query(
        "insert into shipments (id, kind, date, from_location, recipient, country, declared_value, currency, fx_rate, declared_value_base, status, dispatch_seq, closed_on, close_reason, close_seq)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::bigint[], $13::text[], $14::text[], $15::bigint[])
         on conflict (id) do update set status = excluded.status, closed_on = excluded.closed_on, close_reason = excluded.close_reason, close_seq = excluded.close_seq",
    )
    .bind(&id)
    .bind(&kind)
    .bind(&date)
    .bind(&from)
    .bind(&recipient)
    .bind(&country)
    .bind(&declared_value)
    .bind(&currency)
    .bind(&fx_rate)
    .bind(&base)
    .bind(&status)
    .bind(&dispatch_seq)
    .bind(&closed_on)
    .bind(&close_reason)
    .bind(&close_seq)
    .execute(&mut *conn)
    .await
    .map_err(err)?;
    let touched: Vec<(&Shipment, usize)> = changes
        .iter()
        .flat_map(|c| c.touched.iter().map(move |&pos| (&c.shipment, pos)))
        .collect();
    if touched.is_empty() {
        return Ok(());
    }
    let sid: Vec<&str> = touched.iter().map(|(s, _)| s.id.as_str()).collect();
    let pos: Vec<i64> = touched
        .iter()
        .map(|(_, p)| i64::try_from(*p).expect("line index fits"))
        .collect();
    let destination: Vec<&str> = touched
        .iter()
        .map(|t| line(t).destination.as_str())
        .collect();
    let sku: Vec<&str> = touched.iter().map(|t| line(t).sku.as_str()).collect();
    let lot: Vec<&str> = touched.iter().map(|t| line(t).lot.as_str()).collect();
    let dispatched: Vec<i64> = touched
        .iter()
        .map(|t| line(t).dispatched.scaled())
        .collect();
    let acknowledged: Vec<i64> = touched
        .iter()
        .map(|t| line(t).acknowledged.scaled())
        .collect();
    let damaged: Vec<i64> = touched.iter().map(|t| line(t).damaged.scaled()).collect();
    let short: Vec<i64> = touched.iter().map(|t| line(t).short.scaled()).collect();
    let value: Vec<i64> = touched
        .iter()
        .map(|t| line(t).dispatched_value.scaled())
        .collect();
    sqlx::query(
        "insert into shipment_lines (shipment_id, pos, destination, sku, lot, dispatched_qty, acknowledged_qty, damaged_qty, short_qty, dispatched_value)
         select * from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
         on conflict (shipment_id, destination, lot) do update set acknowledged_qty = excluded.acknowledged_qty, damaged_qty = excluded.damaged_qty, short_qty = excluded.short_qty",
    )
    .bind(&sid)
    .bind(&pos)
    .bind(&destination)
    .bind(&sku)
    .bind(&lot)
    .bind(&dispatched)
    .bind(&acknowledged)
    .bind(&damaged)
    .bind(&short)
    .bind(&value)
    .execute(&mut *conn)
    .await
    .map_err(err)?;
    Ok(())
}

/// Per shipment and lot, outstanding (dispatched less acknowledged, damaged and short) against
/// the `transit:` balance, both ways: lines without a balance and balances without lines.
/// Only lines with something outstanding are grouped: a line adds nothing to its group's sum
/// otherwise, and a group it alone made would sum to zero, which is what an absent group
/// counts as. Grouping every line was a hash aggregate of a million groups at 10M postings,
/// spilled to disk at the default `work_mem`. (`like` uses the primary key here: the column
/// is `collate "C"`.)
pub(crate) async fn mismatches(conn: &mut PgConnection) -> Result<Vec<ShipmentMismatch>> {
    let rows = sqlx::query(
        "with outstanding as (
             select 'transit:' || shipment_id as account, shipment_id, lot,
                    sum(dispatched_qty - acknowledged_qty - damaged_qty - short_qty)::bigint as qty
             from shipment_lines
             where dispatched_qty - acknowledged_qty - damaged_qty - short_qty <> 0
             group by shipment_id, lot),
         transit as (select account, lot, qty from balances where account like 'transit:%' and qty <> 0)
         select coalesce(o.shipment_id, substr(t.account, 9)) as shipment, coalesce(o.lot, t.lot) as lot,
                coalesce(o.qty, 0) as oq, coalesce(t.qty, 0) as tq
         from outstanding o full outer join transit t on t.account = o.account and t.lot = o.lot
         where coalesce(o.qty, 0) <> coalesce(t.qty, 0)
         order by 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    Ok(rows
        .iter()
        .map(|r| ShipmentMismatch {
            shipment: r.get("shipment"),
            lot: r.get("lot"),
            outstanding_qty: r.get("oq"),
            transit_qty: r.get("tq"),
        })
        .collect())
}

/// Documents of one kind made under one shipment, in recorded order: from the shipment's
/// entries (its dispatch, acknowledgements and closing, which carry its id; the index holds
/// those kinds of entry only, migration 0012) to their documents by key, whatever the
/// ledger's size. Each step stands behind `offset 0`, and the
/// kind is filtered outside the lookup: joined plainly, the planner hashed every document of
/// the kind to join them to those entries (178 ms a page at 12 000 acknowledgements), and with
/// the kind inside the lookup it intersected the lookup with every entry of the kind's index
/// (3 ms; 0.15 ms this way). Public for the test that holds its plan (`tests/open.rs`).
pub const DOCUMENTS_FOR_SQL: &str = "select d.*
     from (select seq from entries
           where document = $2 and kind in ('dispatch', 'acknowledgement', 'close') offset 0) e
     cross join lateral (select * from documents x where x.entry_seq = e.seq offset 0) d
     where d.kind = $1 and d.pos > $3
     order by d.pos limit $4";

/// Documents of one kind made under one shipment, in recorded order.
pub(crate) async fn documents_for(
    conn: &mut PgConnection,
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
