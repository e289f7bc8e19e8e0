//! The write transaction on SQLite: what the writer loads for a batch, and the batch it
//! writes. Both work a batch at a time: keys are looked up with `IN` lists (a few queries per
//! batch, not one per key) and rows are inserted with multi-row prepared statements of a fixed
//! size, which SQLite parses once and sqlx keeps prepared.

use async_trait::async_trait;
use ledger::{Needs, State};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use store::decode;
use store::prefetch::{Found, Lookups};
use store::{BatchReads, DocumentRecord, Head, IdempotencyRecord, Result, WriteBatch, WriteTx};

use crate::{
    document_row, entries_between, err, i64_of, idempotency_row, item_row, location_row, lot_row,
    party_row, production, rollback, shipments, WriterConn, ROWS_PER_INSERT,
};

/// Keys per `IN` list: two columns x 400 keys stays far below SQLite's variable limit.
const KEYS_PER_QUERY: usize = 400;

/// A batch's transaction on the writer connection, begun with `begin immediate`; rolled back
/// when dropped uncommitted.
pub(crate) struct SqliteWriteTx {
    /// The writer connection, held from `begin` until the commit or the drop.
    pub(crate) w: Option<tokio::sync::OwnedMutexGuard<WriterConn>>,
    pub(crate) head: Head,
    /// The background checkpointer, told after a commit.
    pub(crate) checkpoint: tokio::sync::mpsc::Sender<()>,
}

impl SqliteWriteTx {
    fn conn(&mut self) -> &mut SqliteConnection {
        &mut self
            .w
            .as_mut()
            .expect("the connection is held until commit or drop")
            .conn
    }
}

impl Drop for SqliteWriteTx {
    /// A batch given up (a failed statement, a panic, an aborted task) is rolled back at once,
    /// on a task of its own that holds the connection until it is done, so that the write lock
    /// is freed and the next holder finds no transaction open. Without a runtime to run that
    /// task, `open` stays set and the next holder rolls back first.
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

/// The statements of one write, sent to SQLite in as few round trips as keep its prepared
/// statements useful. Under the HTTP benchmark's load a round trip to the connection's worker
/// thread took 0.2-0.8 ms (the worker, then the writer's task, each waiting for a core), more
/// than a small statement's own work, and a batch made a dozen of them. So consecutive
/// statements whose text will not recur (a chunk's remainder, an update) go as one script,
/// which sqlx binds statement after statement in the order the values were pushed, and is
/// not kept prepared. A full chunk's statement (the same text every time) goes on its own and
/// stays prepared: re-preparing a 100-row insert for every part of an import cost about a
/// tenth of its speed. A small write (an HTTP batch) keeps nothing apart: its full chunks
/// are one or two, and their round trips cost more than preparing them again. Statements run
/// in the order they were pushed.
pub(crate) struct Script<'a> {
    /// Each segment: one round trip, whether it is kept prepared, and its statements.
    segments: Vec<(QueryBuilder<'a, Sqlite>, bool, usize)>,
    /// Whether full chunks go on their own, kept prepared.
    keep_prepared: bool,
}

impl<'a> Script<'a> {
    /// A script for a write of `postings` postings: past [`SMALL_WRITE_POSTINGS`], full
    /// chunks are kept prepared.
    pub(crate) fn new(postings: usize) -> Script<'a> {
        Script {
            segments: Vec::new(),
            keep_prepared: postings > SMALL_WRITE_POSTINGS,
        }
    }

    /// Starts the next statement with `sql`; the builder binds its values. `recurs`: the
    /// statement's text is the same every time (a full chunk), so it is kept prepared.
    pub(crate) fn statement(&mut self, sql: &str, recurs: bool) -> &mut QueryBuilder<'a, Sqlite> {
        let recurs = recurs && self.keep_prepared;
        match self.segments.last_mut() {
            Some((q, false, statements)) if !recurs => {
                q.push(";\n");
                q.push(sql);
                *statements += 1;
            }
            _ => self.segments.push((QueryBuilder::new(sql), recurs, 1)),
        }
        &mut self.segments.last_mut().expect("pushed above").0
    }

    /// Runs every statement, in order; the first failure stops the script and is returned.
    pub(crate) async fn run(self, conn: &mut SqliteConnection) -> Result<()> {
        for (mut q, recurs, statements) in self.segments {
            assert!(
                statements == 1 || !recurs,
                "a prepared statement stands alone"
            );
            q.build()
                .persistent(recurs)
                .execute(&mut *conn)
                .await
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Postings of a write small enough to go to SQLite as one script (see [`Script`]): the
/// HTTP benchmark's batches post about 130 (32 purchases), an import's parts 2 048 and more.
const SMALL_WRITE_POSTINGS: usize = 512;

/// What each statement of a [`Reads`] script reads, and where its rows go.
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

/// Keyed reads sent to SQLite as one script: one round trip to the connection's worker thread
/// instead of one per table. Under the HTTP benchmark's load a batch's prefetch made six
/// round trips, 0.84 ms of which its statements took 0.28 (session 17). Each statement
/// selects its kind first (`_read`), which tells its rows apart from the others' in the one
/// stream, and sqlx binds the values statement after statement in the order they were
/// pushed. The script's text changes with the number of keys, so it is not kept prepared.
struct Reads<'a> {
    q: Option<QueryBuilder<'a, Sqlite>>,
}

impl<'a> Reads<'a> {
    fn new() -> Reads<'a> {
        Reads { q: None }
    }

    /// Starts the next statement of the script.
    fn statement(&mut self) -> &mut QueryBuilder<'a, Sqlite> {
        if let Some(q) = &mut self.q {
            q.push(";\n");
        }
        self.q.get_or_insert_with(|| QueryBuilder::new(""))
    }

    /// `select <rest> ?, ?, ...)<tail>` for every key, a chunk at a time; `rest` ends inside
    /// the `IN`.
    fn within(&mut self, read: Read, rest: &str, keys: &[&'a str], tail: &str) {
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let q = self.statement();
            q.push(format_args!("select {} as _read, {rest}", read as usize));
            let mut sep = q.separated(", ");
            for k in chunk {
                sep.push_bind(*k);
            }
            q.push(")");
            q.push(tail);
        }
    }

    /// `with k (<columns>) as (values ...) select <rest>` for every key pair, a chunk at a
    /// time: the join probes the table's index once per pair.
    fn pairs(&mut self, read: Read, columns: &str, rest: &str, keys: &[(&'a str, &'a str)]) {
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let q = self.statement();
            q.push(format_args!("with k ({columns}) as ("));
            q.push_values(chunk, |mut row, (a, b)| {
                row.push_bind(*a).push_bind(*b);
            });
            q.push(format_args!(") select {} as _read, {rest}", read as usize));
        }
    }

    /// Runs the script (nothing when it is empty) and gives each kind's rows, in the order
    /// each statement returned them.
    async fn run(self, conn: &mut SqliteConnection) -> Result<[Vec<SqliteRow>; READS]> {
        let mut out: [Vec<SqliteRow>; READS] = Default::default();
        let Some(mut q) = self.q else {
            return Ok(out);
        };
        let rows = q
            .build()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
        for r in rows {
            let read: i64 = r.get("_read");
            let read = usize::try_from(read).expect("a kind of read");
            out[read].push(r);
        }
        Ok(out)
    }
}

/// The open lots of each (account, item) in `k`, with their balances: what first-expiry-first
/// picking chooses from, read through the index of guarded balances (migration 0007).
/// Without statistics SQLite prefers the primary key, which reads every balance the account
/// ever had, of every item (20 000 rows of `stock:RAW` at 310 000 postings, against 4 000
/// for one item), so the lookup names the index; a partial index is usable only where the
/// query says `guarded = 1`. Public for the test that holds the plan to it (`tests/open.rs`).
pub const LOT_GROUPS_SQL: &str =
    "select b.account as g_account, l.*, b.qty as bq, b.value as bv from k
     join balances b indexed by balances_guarded_account_sku
       on b.account = k.account and b.sku = k.sku and b.guarded = 1
     join lots l on l.lot = b.lot
     where b.qty <> 0 or b.value <> 0";

/// `values (...), ...` of balance rows in the columns (account, lot, sku, qty, value,
/// guarded): what both kinds of a batch's balance statements insert.
fn push_balance_rows<'a>(q: &mut QueryBuilder<'a, Sqlite>, rows: &'a [store::Delta]) {
    q.push_values(rows, |mut row, (account, lot, sku, d)| {
        row.push_bind(account.to_string())
            .push_bind(lot.as_str())
            .push_bind(sku.as_str())
            .push_bind(d.qty.scaled())
            .push_bind(d.value.scaled())
            .push_bind(i64::from(account.guarded()));
    });
}

#[async_trait]
impl BatchReads for SqliteWriteTx {
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

/// A read-only transaction on a reader connection (see [`store::ReadTx`]): WAL mode lets it
/// read the last commit while the writer writes and commits the next.
pub(crate) struct SqliteReadTx {
    pub(crate) tx: sqlx::Transaction<'static, Sqlite>,
    pub(crate) head: Head,
}

#[async_trait]
impl BatchReads for SqliteReadTx {
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
impl store::ReadTx for SqliteReadTx {
    async fn end(self: Box<Self>) -> Result<()> {
        self.tx.rollback().await.map_err(err)
    }
}

/// The documents, idempotency records and keyed rows of `needs` in one round trip (see
/// [`Reads`]); past entries, shipments and bills of materials, which have readers of their
/// own, follow. On the writer's transaction or on a reader's.
async fn prefetch(
    conn: &mut SqliteConnection,
    ids: &[(&str, &str)],
    keys: &[(&str, &str)],
    needs: &Needs,
    state: &mut State,
) -> Result<(Vec<DocumentRecord>, Vec<IdempotencyRecord>)> {
    let n = state.missing(needs);
    let l = Lookups::of(&n);
    let balance_keys = l.balance_pairs();
    let group_keys = l.group_pairs();
    let mut reads = Reads::new();
    reads.pairs(
        Read::Documents,
        "namespace, id",
        "d.* from k join documents d on d.namespace = k.namespace and d.id = k.id",
        ids,
    );
    reads.pairs(
        Read::Idempotency,
        "actor, key",
        "i.* from k join idempotency i on i.actor = k.actor and i.key = k.key",
        keys,
    );
    reads.within(Read::Items, "* from items where sku in (", l.items(), "");
    reads.within(
        Read::Parties,
        "* from parties where code in (",
        l.parties(),
        "",
    );
    reads.within(
        Read::Locations,
        "* from locations where code in (",
        l.locations(),
        "",
    );
    reads.within(Read::Lots, "* from lots where lot in (", l.lots(), "");
    reads.pairs(
        Read::Balances,
        "account, lot",
        "b.account, b.lot, b.qty, b.value from k join balances b on b.account = k.account and b.lot = k.lot",
        &balance_keys,
    );
    reads.pairs(
        Read::Groups,
        "account, sku",
        LOT_GROUPS_SQL
            .strip_prefix("select ")
            .expect("a select statement"),
        &group_keys,
    );
    // The accounts a lot was ever posted to, by the postings' lot index, then their
    // balances by key: the balances have no index that starts with the lot, and `where
    // lot in (...)` on them read the whole table (31 ms at 1.09M postings, under the write
    // lock; 0.14 ms this way). A balance that is not zero has postings.
    reads.within(
        Read::Holders,
        "b.lot, b.account, b.qty, b.value
         from (select distinct account, lot from postings where lot in (",
        l.holders(),
        ") p join balances b on b.account = p.account and b.lot = p.lot
         where b.qty <> 0 or b.value <> 0",
    );
    let rows = reads.run(conn).await?;
    let documents = rows[Read::Documents as usize]
        .iter()
        .map(document_row)
        .collect::<Result<Vec<_>>>()?;
    let idempotency = rows[Read::Idempotency as usize]
        .iter()
        .map(idempotency_row)
        .collect::<Result<Vec<_>>>()?;
    if n.is_empty() {
        return Ok((documents, idempotency));
    }
    let of = |read: Read| rows[read as usize].iter();
    let balance = |r: &SqliteRow| decode::balance(r.get("qty"), r.get("value"));
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
    // Past entries (reversals) and bills of materials are few per batch: one by one.
    for seq in &n.entries {
        let found = entries_between(conn, i64_of(*seq) - 1, 1)
            .await?
            .into_iter()
            .find(|e| e.entry.seq() == *seq);
        let past = match found {
            Some(e) => {
                let by: Option<i64> =
                    sqlx::query_scalar("select seq from entries where reverses = ?")
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
        let keys: Vec<&str> = n.shipments.iter().map(|k| k.as_str()).collect();
        let mut found = std::collections::HashMap::new();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            for s in shipments::select_ids(conn, chunk).await? {
                found.insert(s.id.clone(), s);
            }
        }
        for id in &n.shipments {
            state.put_shipment(id.clone(), found.remove(id));
        }
    }
    production::load_boms(conn, &n.boms, state).await?;
    Ok((documents, idempotency))
}

#[async_trait]
impl WriteTx for SqliteWriteTx {
    async fn write(&mut self, b: &WriteBatch) -> Result<()> {
        let head = self.head.seq;
        let mut script = Script::new(b.entries.iter().map(|e| e.entry.postings().len()).sum());
        // Order matters for the foreign keys: entries, then the lots they create, then postings.
        for chunk in b.entries.chunks(ROWS_PER_INSERT) {
            let q = script.statement(
                "insert into entries (seq, date, kind, document, actor, reverses, memo, hash, recorded_at) ",
                chunk.len() == ROWS_PER_INSERT,
            );
            q.push_values(chunk, |mut row, e| {
                let x = &e.entry;
                row.push_bind(i64_of(x.seq()))
                    .push_bind(x.date().to_string())
                    .push_bind(x.kind().as_str())
                    .push_bind(x.document().as_str())
                    .push_bind(x.actor())
                    .push_bind(x.reverses().map(i64_of))
                    .push_bind(x.memo())
                    .push_bind(e.hash.to_hex())
                    .push_bind(e.recorded_at.as_str());
            });
        }
        for chunk in b.lots.chunks(ROWS_PER_INSERT) {
            let q = script.statement(
                "insert into lots (lot, sku, origin_kind, origin_doc, origin_seq, expires_on, source) ",
                chunk.len() == ROWS_PER_INSERT,
            );
            q.push_values(chunk, |mut row, l| {
                row.push_bind(l.lot.as_str())
                    .push_bind(l.sku.as_str())
                    .push_bind(l.origin_kind.as_str())
                    .push_bind(l.origin_doc.as_str())
                    .push_bind(i64_of(l.origin_seq))
                    .push_bind(l.expires_on.map(|d| d.to_string()))
                    .push_bind(l.source.as_ref().map(|s| s.as_str()));
            });
        }
        let postings: Vec<(i64, usize, &ledger::Posting)> = b
            .entries
            .iter()
            .flat_map(|e| {
                e.entry
                    .postings()
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i64_of(e.entry.seq()), i, p))
            })
            .collect();
        for chunk in postings.chunks(ROWS_PER_INSERT) {
            let q = script.statement(
                "insert into postings (seq, idx, account, sku, lot, qty, value) ",
                chunk.len() == ROWS_PER_INSERT,
            );
            q.push_values(chunk, |mut row, (seq, idx, p)| {
                row.push_bind(*seq)
                    .push_bind(i64::try_from(*idx).expect("posting index fits"))
                    .push_bind(p.account.to_string())
                    .push_bind(p.sku.as_str())
                    .push_bind(p.lot.as_str())
                    .push_bind(p.qty.scaled())
                    .push_bind(p.value.scaled());
            });
        }
        for chunk in b.new_balances.chunks(ROWS_PER_INSERT) {
            // Keys no stored balance can have yet: inserted with their final value, which the
            // check constraint judges; a key that did exist fails the batch on the primary key.
            let q = script.statement(
                "insert into balances (account, lot, sku, qty, value, guarded) ",
                chunk.len() == ROWS_PER_INSERT,
            );
            push_balance_rows(q, chunk);
        }
        // A repeated (account, lot) would be summed against the stored balance twice and
        // written once, silently.
        b.assert_deltas_netted();
        for chunk in b.deltas.chunks(ROWS_PER_INSERT) {
            // Netted deltas: one row per (account, lot) however many postings touched it. The
            // database adds each delta to the stored balance (zero where there is none yet)
            // and offers the sum as the row to insert, so that the check constraint judges the
            // resulting balance, not the delta; a key that exists takes the sum instead. One
            // statement, where inserting missing keys at zero and then updating took two: the
            // update alone took about as long as all the postings of an acknowledgement batch.
            let q = script.statement(
                "with d (account, lot, sku, qty, value, guarded) as (",
                chunk.len() == ROWS_PER_INSERT,
            );
            push_balance_rows(q, chunk);
            // `where true` tells SQLite's parser that `on conflict` belongs to the insert,
            // not to the join.
            q.push(
                ") insert into balances (account, lot, sku, qty, value, guarded)
                 select d.account, d.lot, d.sku, coalesce(b.qty, 0) + d.qty,
                        coalesce(b.value, 0) + d.value, d.guarded
                 from d left join balances b on b.account = d.account and b.lot = d.lot
                 where true
                 on conflict (account, lot) do update set qty = excluded.qty, value = excluded.value",
            );
        }
        // After entries and lots, which shipments and their lines reference.
        shipments::write(&mut script, &b.shipments);
        production::write_runs(&mut script, &b.production_runs);
        for chunk in b.documents.chunks(ROWS_PER_INSERT) {
            let q = script.statement(
                "insert into documents (namespace, id, kind, body_hash, body, response, entry_seq) ",
                chunk.len() == ROWS_PER_INSERT,
            );
            q.push_values(chunk, |mut row, d| {
                row.push_bind(d.namespace.as_str())
                    .push_bind(d.id.as_str())
                    .push_bind(d.kind.as_str())
                    .push_bind(d.body_hash.as_str())
                    .push_bind(d.body.as_str())
                    .push_bind(d.response.as_str())
                    .push_bind(d.entry_seq.map(i64_of));
            });
        }
        for chunk in b.idempotency.chunks(ROWS_PER_INSERT) {
            let q = script.statement(
                "insert into idempotency (actor, key, request_hash, status, response) ",
                chunk.len() == ROWS_PER_INSERT,
            );
            q.push_values(chunk, |mut row, i| {
                row.push_bind(i.actor.as_str())
                    .push_bind(i.key.as_str())
                    .push_bind(i.request_hash.as_str())
                    .push_bind(i64::from(i.status))
                    .push_bind(i.response.as_str());
            });
        }
        if let Some(h) = &b.head {
            assert!(h.seq >= head, "the head never moves back");
            let q = script.statement("update ledger set seq = ", false);
            q.push_bind(i64_of(h.seq))
                .push(", hash = ")
                .push_bind(h.hash.to_hex())
                .push(", closed_through = ")
                .push_bind(h.closed_through.map(|d| d.to_string()))
                .push(" where id = 1");
        }
        script.run(self.conn()).await?;
        if let Some(h) = &b.head {
            self.head = h.clone();
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        // A failed commit leaves `open` set: the drop rolls back whatever SQLite kept.
        sqlx::query("commit")
            .execute(self.conn())
            .await
            .map_err(err)?;
        if let Some(w) = self.w.as_mut() {
            w.open = false;
        }
        // Full: a checkpoint is already due and will see this commit too.
        let _ = self.checkpoint.try_send(());
        Ok(())
    }
}

/// A synthetic posting row of the baseline: the shapes and sizes of real ones.
pub(crate) fn baseline_row(i: u64) -> (i64, i64, String, &'static str, String, i64, i64) {
    let n = i64::try_from(i).expect("fits");
    (
        n / 8 + 1,
        n % 8,
        format!("stock:LOC-{}", i % 3),
        "MASK",
        format!("PO-{:08}-{}", i / 40, i % 4),
        (n % 1_000 + 1) * 1_000,
        (n % 7_919 + 1) * 10_000,
    )
}

/// The raw-insert baseline on SQLite: the writer's 100-row prepared statements, one
/// `begin immediate` ... `commit` (WAL, synchronous=FULL) per `per_commit` rows.
pub(crate) async fn insert_baseline(
    conn: &mut SqliteConnection,
    rows: u64,
    per_commit: usize,
) -> Result<()> {
    sqlx::query("drop table if exists bench_baseline")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    sqlx::query("create table bench_baseline (seq integer, idx integer, account text, sku text, lot text, qty integer, value integer)")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    let mut i = 0u64;
    let per_commit = u64::try_from(per_commit.max(1)).expect("fits");
    while i < rows {
        let end = (i + per_commit).min(rows);
        let batch: Vec<_> = (i..end).map(baseline_row).collect();
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "begin immediate")
            .await
            .map_err(err)?;
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "insert into bench_baseline (seq, idx, account, sku, lot, qty, value) ",
            );
            q.push_values(chunk, |mut row, r| {
                row.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(r.2.as_str())
                    .push_bind(r.3)
                    .push_bind(r.4.as_str())
                    .push_bind(r.5)
                    .push_bind(r.6);
            });
            q.build().execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        i = end;
    }
    sqlx::query("drop table bench_baseline")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    Ok(())
}
