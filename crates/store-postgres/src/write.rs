//! The write transaction on PostgreSQL: what the writer loads for a batch, and the batch it
//! writes. Both work a batch at a time: keys are looked up with `= any($1)` arrays or joined to
//! `unnest` of key arrays (every kind of key in one statement a batch, not a query per key),
//! and rows are inserted from `unnest` of column arrays, one statement per table and batch.

use std::collections::HashMap;

use async_trait::async_trait;
use ledger::{Needs, State};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use store::decode;
use store::prefetch::{Found, Lookups};
use store::{
    BatchReads, Delta, DocumentRecord, Head, IdempotencyRecord, Result, StoredEntry, WriteBatch,
    WriteTx,
};
use tokio::sync::OwnedMutexGuard;

use crate::{
    document_row, entries_between, err, i64_of, idempotency_row, item_row, location_row, lot_row,
    party_row, production, rollback, shipments, WriterConn,
};

/// A batch's transaction on the writer's connection, which it holds until it commits or is
/// dropped.
pub(crate) struct PgWriteTx {
    /// Taken only by the drop.
    w: Option<OwnedMutexGuard<WriterConn>>,
    head: Head,
}

impl PgWriteTx {
    /// A transaction begun on `w` (`open` set), whose head is `head`.
    pub(crate) fn new(w: OwnedMutexGuard<WriterConn>, head: Head) -> PgWriteTx {
        assert!(
            w.open && w.conn.is_some(),
            "a batch runs in a transaction begun"
        );
        PgWriteTx { w: Some(w), head }
    }

    fn conn(&mut self) -> &mut PgConnection {
        conn_of(&mut self.w)
    }
}

/// The connection a transaction holds, borrowing only that field (the writes also update the
/// head beside it).
fn conn_of(w: &mut Option<OwnedMutexGuard<WriterConn>>) -> &mut PgConnection {
    w.as_mut()
        .and_then(|w| w.conn.as_mut())
        .expect("the connection is held until the drop")
}

impl Drop for PgWriteTx {
    /// A batch given up (a failed statement, a panic, an aborted task) is rolled back at once,
    /// on a task of its own that holds the connection until it is done, so that the head's
    /// lock is freed (another process's writer may be waiting for it) and the next batch finds
    /// no transaction open. Without a runtime to run that task, `open` stays set and the next
    /// batch rolls back first.
    fn drop(&mut self) {
        let Some(mut w) = self.w.take() else { return };
        if !w.open {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { rollback(&mut w).await });
        }
    }
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    it.collect()
}

/// Balance changes as the column arrays `unnest` takes.
struct BalanceColumns<'a> {
    account: Vec<String>,
    lot: Vec<&'a str>,
    sku: Vec<&'a str>,
    qty: Vec<i64>,
    value: Vec<i64>,
    guarded: Vec<bool>,
}

impl<'a> BalanceColumns<'a> {
    fn of(d: &'a [Delta]) -> Self {
        BalanceColumns {
            account: d.iter().map(|x| x.0.to_string()).collect(),
            lot: strings(d.iter().map(|x| x.1.as_str())),
            sku: strings(d.iter().map(|x| x.2.as_str())),
            qty: d.iter().map(|x| x.3.qty.scaled()).collect(),
            value: d.iter().map(|x| x.3.value.scaled()).collect(),
            guarded: d.iter().map(|x| x.0.guarded()).collect(),
        }
    }
}

/// A batch's entries, lots, postings, new balances, documents, idempotency keys and head, in
/// one statement (see `write`). `with ordinality` keeps the batch's order in the documents'
/// `pos`, which lists follow; the head is set only when given (a part before a batch's last
/// has none).
const WRITE_SQL: &str = "with e as (
         insert into entries (seq, date, kind, document, actor, reverses, memo, hash, recorded_at)
         select * from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[])
     ), l as (
         insert into lots (lot, sku, origin_kind, origin_doc, origin_seq, expires_on, source)
         select * from unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[], $16::text[])
     ), p as (
         insert into postings (seq, idx, account, sku, lot, qty, value)
         select * from unnest($17::bigint[], $18::bigint[], $19::text[], $20::text[], $21::text[], $22::bigint[], $23::bigint[])
     ), b as (
         insert into balances (account, lot, sku, qty, value, guarded)
         select * from unnest($24::text[], $25::text[], $26::text[], $27::bigint[], $28::bigint[], $29::bool[])
     ), d as (
         insert into documents (namespace, id, kind, body_hash, body, response, entry_seq)
         select namespace, id, kind, body_hash, body, response, entry_seq
         from unnest($30::text[], $31::text[], $32::text[], $33::text[], $34::text[], $35::text[], $36::bigint[])
              with ordinality as d (namespace, id, kind, body_hash, body, response, entry_seq, n)
         order by n
     ), i as (
         insert into idempotency (actor, key, request_hash, status, response)
         select * from unnest($37::text[], $38::text[], $39::text[], $40::bigint[], $41::text[])
     )
     update ledger set seq = $42, hash = $43, closed_through = $44
     where id = 1 and $42::bigint is not null";

/// A batch's postings as the column arrays `unnest` takes.
struct PostingArrays<'a> {
    seq: Vec<i64>,
    idx: Vec<i64>,
    account: Vec<String>,
    sku: Vec<&'a str>,
    lot: Vec<&'a str>,
    qty: Vec<i64>,
    value: Vec<i64>,
}

impl<'a> PostingArrays<'a> {
    /// The postings of `entries`, in sequence and line order.
    fn of(entries: &'a [StoredEntry]) -> Self {
        let n: usize = entries.iter().map(|x| x.entry.postings().len()).sum();
        let mut a = PostingArrays {
            seq: Vec::with_capacity(n),
            idx: Vec::with_capacity(n),
            account: Vec::with_capacity(n),
            sku: Vec::with_capacity(n),
            lot: Vec::with_capacity(n),
            qty: Vec::with_capacity(n),
            value: Vec::with_capacity(n),
        };
        for x in entries {
            for (i, p) in x.entry.postings().iter().enumerate() {
                a.seq.push(i64_of(x.entry.seq()));
                a.idx.push(i64::try_from(i).expect("posting index fits"));
                a.account.push(p.account.to_string());
                a.sku.push(p.sku.as_str());
                a.lot.push(p.lot.as_str());
                a.qty.push(p.qty.scaled());
                a.value.push(p.value.scaled());
            }
        }
        a
    }
}

/// What each part of the prefetch's one statement ([`prefetch_sql`]) reads: its number is the
/// part's `_read` column, which tells its rows apart from the other parts'.
#[derive(Clone, Copy)]
enum Read {
    Documents,
    Idempotency,
    Items,
    Parties,
    Locations,
    Lots,
    Balances,
    Groups,
    Holders,
}

/// Kinds of [`Read`].
const READS: usize = Read::Holders as usize + 1;

/// Every column a row of the prefetch's statement has, and its type: the union of what the
/// parts read. A column's name has one type in every table, so a row fills its own part's
/// columns under their own names, the decoders read it as they read a row of the table, and
/// the other parts' columns are null.
const READ_COLUMNS: [(&str, &str); 32] = [
    ("namespace", "text"),
    ("id", "text"),
    ("kind", "text"),
    ("body_hash", "text"),
    ("body", "text"),
    ("response", "text"),
    ("entry_seq", "bigint"),
    ("actor", "text"),
    ("key", "text"),
    ("request_hash", "text"),
    ("status", "bigint"),
    ("sku", "text"),
    ("name", "text"),
    ("unit", "text"),
    ("decimals", "bigint"),
    ("shelf_life_days", "bigint"),
    ("code", "text"),
    ("country", "text"),
    ("city", "text"),
    ("parent", "text"),
    ("lot", "text"),
    ("origin_kind", "text"),
    ("origin_doc", "text"),
    ("origin_seq", "bigint"),
    ("expires_on", "text"),
    ("source", "text"),
    ("account", "text"),
    ("qty", "bigint"),
    ("value", "bigint"),
    ("g_account", "text"),
    ("bq", "bigint"),
    ("bv", "bigint"),
];

/// The lot columns, which a lot group's rows carry too.
const LOT_COLUMNS: [&str; 7] = [
    "lot",
    "origin_kind",
    "origin_doc",
    "origin_seq",
    "expires_on",
    "source",
    "sku",
];

/// Each part of the prefetch's statement: what it reads, the columns it fills (in lists: a
/// lot group's rows are lots with three columns more), and its select, which binds its own
/// text arrays (`$1` to `$13` in all). Keys are joined to the tables through `unnest` and a
/// lateral probe of the primary key (`offset 0` keeps the probe a probe), as every keyed read
/// of the writer is.
const READ_PARTS: [(Read, &[&[&str]], &str); READS] = [
    (
        Read::Documents,
        &[&[
            "namespace",
            "id",
            "kind",
            "body_hash",
            "body",
            "response",
            "entry_seq",
        ]],
        "select d.* from unnest($1::text[], $2::text[]) as k (namespace, id)
         cross join lateral (
             select * from documents x where x.namespace = k.namespace and x.id = k.id offset 0
         ) d",
    ),
    (
        Read::Idempotency,
        &[&["actor", "key", "request_hash", "status", "response"]],
        "select i.* from unnest($3::text[], $4::text[]) as k (actor, key)
         cross join lateral (
             select * from idempotency x where x.actor = k.actor and x.key = k.key offset 0
         ) i",
    ),
    (
        Read::Items,
        &[&["sku", "name", "kind", "unit", "decimals", "shelf_life_days"]],
        "select * from items where sku = any($5::text[])",
    ),
    (
        Read::Parties,
        &[&["code", "name", "kind", "country", "city", "parent"]],
        "select * from parties where code = any($6::text[])",
    ),
    (
        Read::Locations,
        &[&["code", "name"]],
        "select * from locations where code = any($7::text[])",
    ),
    (
        Read::Lots,
        &[&LOT_COLUMNS],
        "select x.* from (select distinct lot from unnest($8::text[]) as u (lot)) k
         cross join lateral (select * from lots l where l.lot = k.lot offset 0) x",
    ),
    (
        Read::Balances,
        &[&["account", "lot", "qty", "value"]],
        "select b.account, b.lot, b.qty, b.value
         from unnest($9::text[], $10::text[]) as k (account, lot)
         cross join lateral (
             select * from balances x where x.account = k.account and x.lot = k.lot offset 0
         ) b",
    ),
    (
        // The open lots of each (account, item), through the index of guarded balances
        // (migration 0008).
        Read::Groups,
        &[&LOT_COLUMNS, &["g_account", "bq", "bv"]],
        "select x.* from unnest($11::text[], $12::text[]) as k (account, sku)
         cross join lateral (
             select b.account as g_account, l.*, b.qty as bq, b.value as bv
             from balances b join lots l on l.lot = b.lot
             where b.account = k.account and b.sku = k.sku and b.guarded
               and (b.qty <> 0 or b.value <> 0)
             offset 0
         ) x",
    ),
    (
        // The accounts a lot was ever posted to, by the postings' lot index, then their
        // balances by key: the balances have no index that starts with the lot, and `where
        // lot = any($1)` on them read the whole table. A balance that is not zero has
        // postings.
        Read::Holders,
        &[&["lot", "account", "qty", "value"]],
        "select b.lot, b.account, b.qty, b.value
         from (
             select distinct p.account, p.lot
             from unnest($13::text[]) as k (lot)
             cross join lateral (
                 select account, lot from postings x where x.lot = k.lot offset 0
             ) p
         ) h
         cross join lateral (
             select * from balances x where x.account = h.account and x.lot = h.lot offset 0
         ) b
         where b.qty <> 0 or b.value <> 0",
    ),
];

/// The prefetch's one statement: every part, each in the columns of [`READ_COLUMNS`], as one
/// `union all`. sqlx sends one statement a round trip, and under the HTTP benchmark's load a
/// batch's reads one by one were a quarter of it (BENCHMARKS-HISTORY.md, session 17). The text
/// is the same every time, so the statement stays prepared.
pub fn prefetch_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let parts: Vec<String> = READ_PARTS
            .iter()
            .enumerate()
            .map(|(i, (read, columns, select))| {
                assert_eq!(
                    *read as usize, i,
                    "the parts are in the order of their kinds"
                );
                let fills = |name: &str| columns.iter().any(|c| c.contains(&name));
                assert!(
                    columns
                        .iter()
                        .flat_map(|c| c.iter())
                        .all(|c| READ_COLUMNS.iter().any(|(name, _)| name == c)),
                    "every column a part fills is a column of the statement"
                );
                let list: Vec<String> = READ_COLUMNS
                    .iter()
                    .map(|(name, ty)| {
                        if fills(name) {
                            format!("x.{name}")
                        } else {
                            format!("null::{ty} as {name}")
                        }
                    })
                    .collect();
                format!("select {i} as _read, {} from ({select}) x", list.join(", "))
            })
            .collect();
        parts.join("\nunion all\n")
    })
}

/// Past entries (reversals), shipments and bills of materials of `n`, each read by a reader of
/// its own after the keyed reads.
async fn load_rest(conn: &mut PgConnection, n: &Needs, state: &mut State) -> Result<()> {
    // Past entries (reversals) and bills of materials are few per batch: one by one.
    for seq in &n.entries {
        let found = entries_between(conn, i64_of(*seq) - 1, 1)
            .await?
            .into_iter()
            .find(|e| e.entry.seq() == *seq);
        let past = match found {
            Some(e) => {
                let by: Option<i64> =
                    sqlx::query_scalar("select seq from entries where reverses = $1")
                        .bind(i64_of(*seq))
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(err)?;
                Some(ledger::PastEntry {
                    entry: e.entry,
                    reversed_by: by.map(decode::seq),
                })
            }
            None => None,
        };
        state.put_entry(*seq, past);
    }
    if !n.shipments.is_empty() {
        let keys = strings(n.shipments.iter().map(|k| k.as_str()));
        let mut found = HashMap::new();
        for s in shipments::select_ids(conn, &keys).await? {
            found.insert(s.id.clone(), s);
        }
        for id in &n.shipments {
            state.put_shipment(id.clone(), found.remove(id));
        }
    }
    production::load_boms(conn, &n.boms, state).await?;
    Ok(())
}

#[async_trait]
impl BatchReads for PgWriteTx {
    fn head(&self) -> &Head {
        &self.head
    }

    async fn prefetch(
        &mut self,
        ids: &[(&str, &str)],
        keys: &[(&str, &str)],
        needs: &Needs,
        state: &mut State,
    ) -> Result<(Vec<DocumentRecord>, Vec<IdempotencyRecord>)> {
        prefetch(self.conn(), ids, keys, needs, state).await
    }
}

/// A read-only transaction on a pool connection (see [`store::ReadTx`]), at one snapshot
/// (repeatable read) and with the writer's plans (`PgStore::begin_read`).
pub(crate) struct PgReadTx {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub(crate) head: Head,
}

#[async_trait]
impl BatchReads for PgReadTx {
    fn head(&self) -> &Head {
        &self.head
    }

    async fn prefetch(
        &mut self,
        ids: &[(&str, &str)],
        keys: &[(&str, &str)],
        needs: &Needs,
        state: &mut State,
    ) -> Result<(Vec<DocumentRecord>, Vec<IdempotencyRecord>)> {
        prefetch(&mut self.tx, ids, keys, needs, state).await
    }
}

#[async_trait]
impl store::ReadTx for PgReadTx {
    async fn end(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.map_err(err)
    }
}

/// The documents, idempotency records and keyed rows of `needs` in one statement (see
/// [`prefetch_sql`]); past entries, shipments and bills of materials, which have readers of
/// their own, follow. On the writer's transaction or on a reader's.
async fn prefetch(
    conn: &mut PgConnection,
    ids: &[(&str, &str)],
    keys: &[(&str, &str)],
    needs: &Needs,
    state: &mut State,
) -> Result<(Vec<DocumentRecord>, Vec<IdempotencyRecord>)> {
    let n = state.missing(needs);
    let l = Lookups::of(&n);
    let rows = if ids.is_empty() && keys.is_empty() && l.is_empty() {
        Vec::new()
    } else {
        sqlx::query(prefetch_sql())
            .bind(strings(ids.iter().map(|(a, _)| *a)))
            .bind(strings(ids.iter().map(|(_, b)| *b)))
            .bind(strings(keys.iter().map(|(a, _)| *a)))
            .bind(strings(keys.iter().map(|(_, b)| *b)))
            .bind(l.items())
            .bind(l.parties())
            .bind(l.locations())
            .bind(l.lots())
            .bind(l.balance_accounts())
            .bind(l.balance_lots())
            .bind(l.group_accounts())
            .bind(l.group_skus())
            .bind(l.holders())
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?
    };
    let mut by_read: [Vec<&PgRow>; READS] = Default::default();
    for r in &rows {
        let read: i32 = r.get("_read");
        by_read[usize::try_from(read).expect("a kind of read")].push(r);
    }
    let of = |read: Read| by_read[read as usize].iter().copied();
    let documents = of(Read::Documents)
        .map(document_row)
        .collect::<Result<Vec<_>>>()?;
    let idempotency = of(Read::Idempotency)
        .map(idempotency_row)
        .collect::<Result<Vec<_>>>()?;
    if n.is_empty() {
        return Ok((documents, idempotency));
    }
    let balance = |r: &PgRow| decode::balance(r.get("qty"), r.get("value"));
    let found = Found {
        items: of(Read::Items).map(item_row).collect::<Result<_>>()?,
        parties: of(Read::Parties).map(party_row).collect::<Result<_>>()?,
        locations: of(Read::Locations)
            .map(location_row)
            .collect::<Result<_>>()?,
        lots: of(Read::Lots).map(lot_row).collect::<Result<_>>()?,
        balances: of(Read::Balances)
            .map(|r| (r.get("account"), r.get("lot"), balance(r)))
            .collect(),
        groups: of(Read::Groups)
            .map(|r| {
                let b = decode::balance(r.get("bq"), r.get("bv"));
                Ok((lot_row(r)?, r.get("g_account"), b))
            })
            .collect::<Result<_>>()?,
        holders: of(Read::Holders)
            .map(|r| (r.get("lot"), r.get("account"), balance(r)))
            .collect(),
    };
    l.put(found, state)?;
    load_rest(conn, &n, state).await?;
    Ok((documents, idempotency))
}

#[async_trait]
impl WriteTx for PgWriteTx {
    async fn write(&mut self, b: &WriteBatch) -> Result<()> {
        if let Some(h) = &b.head {
            assert!(h.seq >= self.head.seq, "the head never moves back");
        }
        let conn = conn_of(&mut self.w);
        let e = &b.entries;
        let l = &b.lots;
        let d = &b.documents;
        let i = &b.idempotency;
        let posting = PostingArrays::of(e);
        let new = BalanceColumns::of(&b.new_balances);
        if !e.is_empty()
            || !l.is_empty()
            || !b.new_balances.is_empty()
            || !d.is_empty()
            || !i.is_empty()
            || b.head.is_some()
        {
            // What every batch writes, in one statement and so one round trip: under the HTTP
            // benchmark's load a round trip took 0.2-0.4 ms, more than most of these
            // statements' own work on the server. Each `with` clause runs once, to completion,
            // whether or not anything reads it (an empty array inserts nothing), and the
            // references between them (postings to entries and lots, documents to entries)
            // are checked when the statement ends, when all are in.
            sqlx::query(WRITE_SQL)
                .bind(
                    e.iter()
                        .map(|x| i64_of(x.entry.seq()))
                        .collect::<Vec<i64>>(),
                )
                .bind(
                    e.iter()
                        .map(|x| x.entry.date().to_string())
                        .collect::<Vec<String>>(),
                )
                .bind(strings(e.iter().map(|x| x.entry.kind().as_str())))
                .bind(strings(e.iter().map(|x| x.entry.document().as_str())))
                .bind(strings(e.iter().map(|x| x.entry.actor())))
                .bind(
                    e.iter()
                        .map(|x| x.entry.reverses().map(i64_of))
                        .collect::<Vec<Option<i64>>>(),
                )
                .bind(strings(e.iter().map(|x| x.entry.memo())))
                .bind(e.iter().map(|x| x.hash.to_hex()).collect::<Vec<String>>())
                .bind(strings(e.iter().map(|x| x.recorded_at.as_str())))
                .bind(strings(l.iter().map(|x| x.lot.as_str())))
                .bind(strings(l.iter().map(|x| x.sku.as_str())))
                .bind(strings(l.iter().map(|x| x.origin_kind.as_str())))
                .bind(strings(l.iter().map(|x| x.origin_doc.as_str())))
                .bind(l.iter().map(|x| i64_of(x.origin_seq)).collect::<Vec<i64>>())
                .bind(
                    l.iter()
                        .map(|x| x.expires_on.map(|d| d.to_string()))
                        .collect::<Vec<Option<String>>>(),
                )
                .bind(
                    l.iter()
                        .map(|x| x.source.as_ref().map(|s| s.as_str()))
                        .collect::<Vec<Option<&str>>>(),
                )
                .bind(&posting.seq)
                .bind(&posting.idx)
                .bind(&posting.account)
                .bind(&posting.sku)
                .bind(&posting.lot)
                .bind(&posting.qty)
                .bind(&posting.value)
                // Keys no stored balance can have yet: inserted with their final value, which
                // the check constraint judges; a key that did exist fails the batch on the
                // primary key.
                .bind(&new.account)
                .bind(&new.lot)
                .bind(&new.sku)
                .bind(&new.qty)
                .bind(&new.value)
                .bind(&new.guarded)
                .bind(strings(d.iter().map(|x| x.namespace.as_str())))
                .bind(strings(d.iter().map(|x| x.id.as_str())))
                .bind(strings(d.iter().map(|x| x.kind.as_str())))
                .bind(strings(d.iter().map(|x| x.body_hash.as_str())))
                .bind(strings(d.iter().map(|x| x.body.as_str())))
                .bind(strings(d.iter().map(|x| x.response.as_str())))
                .bind(
                    d.iter()
                        .map(|x| x.entry_seq.map(i64_of))
                        .collect::<Vec<Option<i64>>>(),
                )
                .bind(strings(i.iter().map(|x| x.actor.as_str())))
                .bind(strings(i.iter().map(|x| x.key.as_str())))
                .bind(strings(i.iter().map(|x| x.request_hash.as_str())))
                .bind(i.iter().map(|x| i64::from(x.status)).collect::<Vec<i64>>())
                .bind(strings(i.iter().map(|x| x.response.as_str())))
                .bind(b.head.as_ref().map(|h| i64_of(h.seq)))
                .bind(b.head.as_ref().map(|h| h.hash.to_hex()))
                .bind(
                    b.head
                        .as_ref()
                        .and_then(|h| h.closed_through.map(|d| d.to_string())),
                )
                .execute(&mut *conn)
                .await
                .map_err(err)?;
        }
        if !b.deltas.is_empty() {
            // A repeated (account, lot) would be applied once by `update ... from`, silently.
            b.assert_deltas_netted();
            let BalanceColumns {
                account,
                lot,
                sku,
                qty,
                value,
                guarded,
            } = BalanceColumns::of(&b.deltas);
            // Netted deltas: one row per (account, lot) however many postings touched it. Not
            // an upsert: the check constraint is tested on the row proposed for insertion
            // before the conflict is found, so `on conflict do update` would refuse every
            // outflow of a guarded account. Each key is looked up once, by the primary key (a
            // scalar subquery behind `offset 0`: joined plainly, the planner hashes the whole
            // table for every batch, a cost that grows with the ledger, 82 564 rows scanned
            // for 2 000 keys at 20 000 documents); the keys found are updated by their ctid
            // and the others inserted, in one statement. The ledger row lock keeps other
            // writers out, so a key not found cannot appear before the insert (and if it did,
            // the primary key would fail the batch, never add twice).
            sqlx::query(
                "with found as (
                     select n.account, n.lot, n.sku, n.qty, n.value, n.guarded,
                            (select ctid from balances b
                             where b.account = n.account and b.lot = n.lot offset 0) as id
                     from unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                                 $6::bool[]) as n (account, lot, sku, qty, value, guarded)
                 ), updated as (
                     update balances
                     set qty = balances.qty + found.qty, value = balances.value + found.value
                     from found where found.id is not null and balances.ctid = found.id
                 )
                 insert into balances (account, lot, sku, qty, value, guarded)
                 select account, lot, sku, qty, value, guarded from found where id is null",
            )
            .bind(&account)
            .bind(&lot)
            .bind(&sku)
            .bind(&qty)
            .bind(&value)
            .bind(&guarded)
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        }
        // After entries and lots, which shipments, their lines and runs reference.
        shipments::write(&mut *conn, &b.shipments).await?;
        production::write_runs(conn, &b.production_runs).await?;
        if let Some(h) = &b.head {
            self.head = h.clone();
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        // A failed commit leaves `open` set: the drop rolls back whatever the server kept.
        sqlx::query("commit")
            .execute(self.conn())
            .await
            .map_err(err)?;
        if let Some(w) = self.w.as_mut() {
            w.open = false;
        }
        Ok(())
    }
}

/// The raw-insert baseline on PostgreSQL: the writer's one `unnest` statement per table and
/// batch, one transaction (synchronous_commit=on) per `per_commit` rows.
pub(crate) async fn insert_baseline(
    pool: &sqlx::PgPool,
    rows: u64,
    per_commit: usize,
) -> Result<()> {
    let mut conn = pool.acquire().await.map_err(err)?;
    sqlx::query("drop table if exists bench_baseline")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    sqlx::query("create table bench_baseline (seq bigint, idx bigint, account text, sku text, lot text, qty bigint, value bigint)")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    let mut i = 0u64;
    let per_commit = u64::try_from(per_commit.max(1)).expect("fits");
    while i < rows {
        let end = (i + per_commit).min(rows);
        let n = usize::try_from(end - i).expect("fits");
        let (mut seq, mut idx, mut account, mut sku, mut lot, mut qty, mut value) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for j in i..end {
            let k = i64::try_from(j).expect("fits");
            seq.push(k / 8 + 1);
            idx.push(k % 8);
            account.push(format!("stock:LOC-{}", j % 3));
            sku.push("MASK");
            lot.push(format!("PO-{:08}-{}", j / 40, j % 4));
            qty.push((k % 1_000 + 1) * 1_000);
            value.push((k % 7_919 + 1) * 10_000);
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
        sqlx::query(
            "insert into bench_baseline (seq, idx, account, sku, lot, qty, value)
             select * from unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])",
        )
        .bind(&seq)
        .bind(&idx)
        .bind(&account)
        .bind(&sku)
        .bind(&lot)
        .bind(&qty)
        .bind(&value)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        i = end;
    }
    sqlx::query("drop table bench_baseline")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    Ok(())
}
