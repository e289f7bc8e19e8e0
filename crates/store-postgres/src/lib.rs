//! Store on PostgreSQL, for deployments past one machine: one pool, migrations run on open.
//!
//! Writes serialise on a row lock of the ledger head (`select ... for update` in `begin`), so
//! there is exactly one write path per database however many processes share it (DESIGN
//! section 3). Identifiers are stored with `collate "C"` so that lists come in the same order
//! as on SQLite.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use ledger::{Hash, Item, Location, Party, Shipment};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use store::decode::{self, RawEntry, RawPosting};
use store::{
    BalanceFilter, BalanceMismatch, BalanceRow, BomPut, DocumentRecord, Head, IdempotencyRecord,
    Inserted, JsonText, LotPosting, Result, RunFilter, RunReportRow, ShipmentFilter,
    ShipmentMismatch, StockRow, Store, StoreError, StoredBom, StoredEntry, TokenRecord, Violation,
    WriteTx, PAGE_MAX,
};
use store::{EntryColumns, JournalPage, PostingColumns, Snapshot, JOURNAL_PAGE_MAX};

mod copy;
mod production;
mod shipments;
mod write;

use write::PgWriteTx;

/// A page of production runs, public for the test that holds its generic plan to the index
/// in entry order (`tests/open.rs`).
#[doc(hidden)]
pub use production::runs_page_sql;
/// The materials of a page of production runs, public for the test that holds their lookup to
/// the primary key (`tests/open.rs`).
#[doc(hidden)]
pub use production::RUN_MATERIALS_SQL;
/// A page of shipments, public for the test that holds its plans (`tests/open.rs`).
#[doc(hidden)]
pub use shipments::page_sql as shipments_page_sql;
/// The writer's lookup of a batch's shipments, public for the test that holds its plan to the
/// primary key where the planner has no statistics (`tests/open.rs`).
#[doc(hidden)]
pub use shipments::BY_IDS_SQL as SHIPMENTS_BY_IDS_SQL;
/// A shipment's acknowledgements, public for the test that holds its plan to the keys
/// (`tests/open.rs`).
#[doc(hidden)]
pub use shipments::DOCUMENTS_FOR_SQL;
/// A batch's first read, every kind of key in one statement, public for the test that holds
/// its generic plan to lookups by key (`tests/open.rs`).
#[doc(hidden)]
pub use write::prefetch_sql;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connections in the pool, shared by reads and the writer.
const MAX_CONNECTIONS: u32 = 8;
/// Rows per multi-row insert: 7 columns x 100 rows stays far below PostgreSQL's 65535 binds.
const ROWS_PER_INSERT: usize = 100;

pub(crate) fn err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        let msg = db.message().to_owned();
        match db.code().as_deref() {
            // serialization_failure and deadlock_detected ask the caller to try again.
            Some("40001") | Some("40P01") | Some("55P03") => return StoreError::Busy(msg),
            // check_violation, unique_violation, foreign_key_violation.
            Some("23514") | Some("23505") | Some("23503") => return StoreError::Constraint(msg),
            _ if msg.contains("append-only") => return StoreError::Constraint(msg),
            _ => {}
        }
    }
    StoreError::Backend(e.to_string())
}

/// How long a writer waits for the ledger head's lock before the attempt is retried.
const LOCK_TIMEOUT_MS: u64 = 5_000;
/// How long opening waits for a connection before reporting the server unreachable.
const CONNECT_TIMEOUT_MS: u64 = 10_000;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// How the writer's connection is opened (and opened again when it broke): as the
    /// pool's are, and with generic plans only.
    options: PgConnectOptions,
    writer: Arc<tokio::sync::Mutex<WriterConn>>,
}

/// The connection the writer's batches run on, kept out of the pool as SQLite's is. Taken
/// from the pool, a batch waited for a connection tested on its way back (a round trip on a
/// task of its own), tested again on the way out (another), then began and read the head in
/// two more: under the HTTP benchmark's load 1.05 ms a batch (acquire 0.48, `begin` 0.38, the
/// head 0.19). Here a batch begins and reads the head in one round trip. The mutex is fair,
/// so batches (and the retries of a failed one) take it in turn.
#[derive(Debug, Default)]
pub(crate) struct WriterConn {
    /// None before the first batch, and after a rollback failed (the connection may be
    /// broken; dropping it ends its session, and the server rolls back what it held).
    pub(crate) conn: Option<PgConnection>,
    /// A batch's transaction was begun and neither committed nor rolled back: its
    /// `PgWriteTx` was dropped where no rollback could be started. The next holder rolls it
    /// back first.
    pub(crate) open: bool,
}

/// Rolls back the transaction a batch left open. A rollback that fails drops the connection:
/// whatever broke it, the next batch starts on a new one, and the server ends the old
/// session's transaction with it.
pub(crate) async fn rollback(w: &mut WriterConn) {
    if let Some(conn) = w.conn.as_mut() {
        if let Err(e) = sqlx::query("rollback").execute(conn).await {
            tracing::warn!(error = %e, "rolling back an abandoned batch failed; reconnecting");
            w.conn = None;
        }
    }
    w.open = false;
}

impl PgStore {
    /// Connects to the database at a `postgres:` URL and migrates it.
    pub async fn open(url: &str) -> Result<PgStore> {
        // A writer waiting for the head lock gives up after LOCK_TIMEOUT_MS and is retried as
        // busy, like SQLite's busy timeout; durability is the server's default
        // synchronous_commit=on, set here explicitly so a server default cannot weaken it.
        // No JIT: the service's statements are lookups and page reads, and where the planner
        // has no statistics (after a bulk import; always where autovacuum is off) it
        // overestimates their cost and compiled them, tens of milliseconds a statement (a lot
        // trace at 10M postings 343 ms with JIT; the SQL reports at 1.09M no slower without).
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{url}: {e}")))?
            .options([
                ("lock_timeout", format!("{LOCK_TIMEOUT_MS}ms")),
                ("synchronous_commit", "on".to_owned()),
                ("jit", "off".to_owned()),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(std::time::Duration::from_millis(CONNECT_TIMEOUT_MS))
            .connect_with(options.clone())
            .await
            .map_err(err)?;
        // sqlx takes an advisory lock while migrating, so processes starting together are safe.
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        // The writer runs the same few statements every batch, each with the batch's keys.
        // Planned for each batch's own keys (as a prepared statement is for its first five
        // runs, and after them whenever the planner guesses its generic plan dearer, as it did
        // here) the prefetch's one statement took 1.4 ms a batch to plan and 0.2 ms to run
        // (session 18). Planned once, every statement keeps the plan it was written for:
        // keyed reads probe their keys (`tests/open.rs` holds the prefetch's generic plan to
        // that) and writes insert from arrays.
        let options = options.options([("plan_cache_mode", "force_generic_plan")]);
        Ok(PgStore {
            pool,
            options,
            writer: Arc::default(),
        })
    }

    /// The pool, for tests that must reach under the service (tampering).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Creates an empty database beside the one `admin_url` names, for `ppe bench`, and returns
/// its URL; [`drop_scratch_database`] removes it.
pub async fn create_scratch_database(admin_url: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "a plain database name"
    );
    let mut conn = PgConnection::connect(admin_url).await.map_err(err)?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut conn)
        .await
        .map_err(err)?;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .map_err(err)?;
    let base = admin_url
        .split_once('?')
        .map_or(admin_url, |(b, _)| b)
        .rsplit_once('/')
        .map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

/// Drops a database [`create_scratch_database`] made.
pub async fn drop_scratch_database(admin_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = PgConnection::connect(admin_url).await.map_err(err)?;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&mut conn)
        .await
        .map_err(err)?;
    Ok(())
}

fn limit(n: u32) -> i64 {
    i64::from(n.clamp(1, PAGE_MAX))
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).expect("sequence numbers fit in i64")
}

const HEAD: &str = "select seq, hash, closed_through from ledger where id = 1";
/// The row lock on the ledger head: the single serialised write path across processes.
/// Begins a batch's transaction and locks and reads the head, in one round trip (the simple
/// query protocol runs both statements; its rows come back as text, which the same columns
/// decode).
const BEGIN_HEAD: &str =
    "begin; select seq, hash, closed_through from ledger where id = 1 for update";

async fn read_head(conn: &mut PgConnection, sql: &str) -> Result<Head> {
    let row = sqlx::query(sql).fetch_one(conn).await.map_err(err)?;
    head_row(&row)
}

fn head_row(row: &PgRow) -> Result<Head> {
    let hash: String = row.get("hash");
    Ok(Head {
        seq: decode::seq(row.get("seq")),
        hash: Hash::from_hex(&hash)
            .ok_or_else(|| StoreError::Corrupt("ledger head hash".into()))?,
        closed_through: decode::opt_date(row.get("closed_through"))?,
    })
}

fn item_row(r: &PgRow) -> Result<Item> {
    decode::item(
        r.get("sku"),
        r.get("name"),
        r.get("kind"),
        r.get("unit"),
        r.get("decimals"),
        r.get("shelf_life_days"),
    )
}
fn party_row(r: &PgRow) -> Result<Party> {
    decode::party(
        r.get("code"),
        r.get("name"),
        r.get("kind"),
        r.get("country"),
        r.get("city"),
        r.get("parent"),
    )
}
fn location_row(r: &PgRow) -> Result<Location> {
    decode::location(r.get("code"), r.get("name"))
}
fn lot_row(r: &PgRow) -> Result<ledger::Lot> {
    decode::lot(
        r.get("lot"),
        r.get("sku"),
        r.get("origin_kind"),
        r.get("origin_doc"),
        r.get("origin_seq"),
        r.get("expires_on"),
        r.get("source"),
    )
}
pub(crate) fn document_row(r: &PgRow) -> Result<DocumentRecord> {
    let body: String = r.get("body");
    let response: String = r.get("response");
    Ok(DocumentRecord {
        namespace: r.get("namespace"),
        id: r.get("id"),
        kind: r.get("kind"),
        body_hash: r.get("body_hash"),
        body: JsonText::parse(body)
            .map_err(|e| StoreError::Corrupt(format!("document body: {e}")))?,
        response: JsonText::parse(response)
            .map_err(|e| StoreError::Corrupt(format!("document response: {e}")))?,
        entry_seq: r.get::<Option<i64>, _>("entry_seq").map(decode::seq),
    })
}
fn idempotency_row(r: &PgRow) -> Result<IdempotencyRecord> {
    let response: String = r.get("response");
    Ok(IdempotencyRecord {
        actor: r.get("actor"),
        key: r.get("key"),
        request_hash: r.get("request_hash"),
        status: u16::try_from(r.get::<i64, _>("status"))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        response: JsonText::parse(response)
            .map_err(|e| StoreError::Corrupt(format!("idempotency response: {e}")))?,
    })
}
fn token_row(r: &PgRow) -> TokenRecord {
    TokenRecord {
        name: r.get("name"),
        role: r.get("role"),
        token_hash: r.get("token_hash"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
    }
}
fn raw_entry(r: &PgRow) -> RawEntry {
    RawEntry {
        seq: r.get("seq"),
        date: r.get("date"),
        kind: r.get("kind"),
        document: r.get("document"),
        actor: r.get("actor"),
        reverses: r.get("reverses"),
        memo: r.get("memo"),
        hash: r.get("hash"),
        recorded_at: r.get("recorded_at"),
    }
}
fn raw_posting(r: &PgRow) -> RawPosting {
    RawPosting {
        seq: r.get("seq"),
        account: r.get("account"),
        sku: r.get("sku"),
        lot: r.get("lot"),
        qty: r.get("qty"),
        value: r.get("value"),
    }
}

const ENTRY_COLUMNS: &str = "seq, date, kind, document, actor, reverses, memo, hash, recorded_at";
const POSTING_COLUMNS: &str = "seq, account, sku, lot, qty, value";

async fn entries_between(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEntry>> {
    let rows = sqlx::query(&format!(
        "select {ENTRY_COLUMNS} from entries where seq > $1 order by seq limit $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let Some(last) = rows.last().map(|r| r.get::<i64, _>("seq")) else {
        return Ok(Vec::new());
    };
    let postings = sqlx::query(&format!(
        "select {POSTING_COLUMNS} from postings where seq > $1 and seq <= $2 order by seq, idx"
    ))
    .bind(after)
    .bind(last)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    entries_of_rows(&rows, &postings)
}

/// Entries from their rows and their postings' rows, both in sequence.
fn entries_of_rows(rows: &[PgRow], postings: &[PgRow]) -> Result<Vec<StoredEntry>> {
    decode::entries(
        rows.iter().map(raw_entry).collect(),
        postings.iter().map(raw_posting).collect(),
    )
}

/// Maintained balances that are not zero, ordered by (account, lot), after the cursor.
async fn balances_page(
    conn: &mut PgConnection,
    f: &BalanceFilter,
    after: Option<(String, String)>,
    n: u32,
) -> Result<Vec<BalanceRow>> {
    let (after_account, after_lot) = after.unwrap_or_default();
    // Each filter is optional: `$1::text is null or column = $1` keeps one statement for all cases.
    let rows = sqlx::query(
        "select account, sku, lot, qty, value from balances
         where (qty <> 0 or value <> 0)
           and ($1::text is null or account = $1) and ($2::text is null or sku = $2) and ($3::text is null or lot = $3)
           and (account, lot) > ($4, $5)
         order by account, lot limit $6",
    )
    .bind(f.account.as_deref())
    .bind(f.sku.as_deref())
    .bind(f.lot.as_deref())
    .bind(after_account)
    .bind(after_lot)
    .bind(limit(n))
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    Ok(rows.iter().map(balance_row).collect())
}

/// Appends ` and <clause>` to `sql` for each filter asked for, the clause's `?` numbered as the
/// next parameter after `$last`, and returns the number of the parameter after them. A page
/// with optional filters is one statement per combination: PostgreSQL plans a statement sqlx
/// keeps prepared generically after its fifth execution, and a generic plan of one statement
/// for all (`$n::text is null or column = $n`) cannot tell which filters are in use, so it
/// uses no index of theirs.
pub(crate) fn push_filters(sql: &mut String, last: usize, filters: &[(bool, &str)]) -> usize {
    let mut n = last;
    for (wanted, clause) in filters {
        if *wanted {
            n += 1;
            assert_eq!(clause.matches('?').count(), 1, "one parameter a filter");
            sql.push_str(" and ");
            sql.push_str(&clause.replace('?', &format!("${n}")));
        }
    }
    n + 1
}

/// A row of (account, sku, lot, qty, value): a maintained balance or a trial-balance line.
fn balance_row(r: &PgRow) -> BalanceRow {
    let b = decode::balance(r.get("qty"), r.get("value"));
    BalanceRow {
        account: r.get("account"),
        sku: r.get("sku"),
        lot: r.get("lot"),
        quantity: b.qty,
        value: b.value,
    }
}

/// Lots by number, in lot order, each looked up by its key (lateral, behind `offset 0`). With
/// `where lot = any($1)` the planner, where the table has no statistics, read all of it once
/// a batch named a few thousand lots (8 000 numbers among 1.2M lots: a parallel sequential
/// scan, 61 ms, where 3 000 took 2.5 ms by the index), more as the table grows: an import's
/// batch names up to a few thousand. `tests/open.rs` holds the plan to the primary key.
#[doc(hidden)]
pub const LOTS_BY_NUMBER_SQL: &str =
    "select x.* from (select distinct lot from unnest($1::text[]) as u (lot)) k
     cross join lateral (select * from lots l where l.lot = k.lot offset 0) x
     order by x.lot";

/// The lots of the given numbers that exist (the first `PAGE_MAX`), in lot order.
async fn lots_by_number(conn: &mut PgConnection, lots: &[String]) -> Result<Vec<ledger::Lot>> {
    if lots.is_empty() {
        return Ok(Vec::new());
    }
    let lots: Vec<&str> = lots
        .iter()
        .take(PAGE_MAX as usize)
        .map(String::as_str)
        .collect();
    let rows = sqlx::query(LOTS_BY_NUMBER_SQL)
        .bind(lots)
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?;
    rows.iter().map(lot_row).collect()
}

/// Table pages (8 KiB each) of balances read as one part by `Snapshot::balance_part`: 32 MiB,
/// about 400 000 balances.
const BALANCE_PART_BLOCKS: u64 = 4_096;

/// Room for a part of the balances in a `COPY` stream: about 16 MB at 1.09M postings, half
/// of the part's 32 MiB of table pages, where about half the balances are zero.
const BALANCE_PART_STREAM_BYTES: usize = 16 << 20;

/// The second connection a snapshot reads the journal on, in a transaction of its own that
/// plans its reads as the snapshot's do ([`plan_reads_in_key_order`]).
enum Lane {
    /// Not asked for yet.
    Untried,
    Open(sqlx::Transaction<'static, sqlx::Postgres>),
    /// The pool had none to spare, or it broke: the snapshot's own transaction reads every
    /// page.
    Unavailable,
}

/// How long a snapshot waits for its second connection before it reads on its own one.
const LANE_ACQUIRE_MS: u64 = 100;

/// A read-only `repeatable read` transaction: every statement of it sees the database as its
/// first (the head's) did. It takes no lock a writer waits for.
struct PgSnapshot {
    head: Head,
    /// Used by one read at a time: the caller's, or the page being read ahead.
    tx: Arc<tokio::sync::Mutex<sqlx::Transaction<'static, sqlx::Postgres>>>,
    /// A second connection of the pool, outside the snapshot, that reads every other page of
    /// the journal ahead: two server processes select and send pages, and two tasks take them
    /// in, while the caller checks the current one. Entries and postings are append-only, so
    /// those up to the snapshot's head read the same from any later snapshot. Taken at the
    /// journal's second page and given back at its end: a snapshot holds two of the pool's
    /// eight connections only while it reads a long journal.
    lane: Arc<tokio::sync::Mutex<Lane>>,
    pool: PgPool,
    /// The next two pages, one on each connection.
    ahead: store::ReadAhead,
}

impl PgSnapshot {
    /// Reads a page in a task of its own: on the snapshot's transaction (lane 0), or on the
    /// second connection (lane 1) up to the snapshot's head. A page that comes back short
    /// there may have been cut at the head, and entries past the head in the snapshot itself
    /// are a finding: the snapshot's transaction reads it again.
    fn read_page(&self, after: i64, limit: i64, lane: usize) -> store::PageTask {
        let (tx, second, pool) = (self.tx.clone(), self.lane.clone(), self.pool.clone());
        let head = i64_of(self.head.seq);
        tokio::spawn(async move {
            if lane == 1 {
                let mut second = second.lock().await;
                if let Lane::Untried = *second {
                    let wait = std::time::Duration::from_millis(LANE_ACQUIRE_MS);
                    *second = match tokio::time::timeout(wait, open_lane(&pool)).await {
                        Ok(Ok(tx)) => Lane::Open(tx),
                        _ => Lane::Unavailable,
                    };
                }
                if let Lane::Open(conn) = &mut *second {
                    match journal_between(conn, after, limit, head).await {
                        Ok((page, postings)) if i64::try_from(page.len()) == Ok(limit) => {
                            drop(second);
                            return with_postings(page, postings);
                        }
                        // The journal's end (up to the head): the connection goes back to
                        // the pool until a pass asks for one again.
                        Ok(_) => {
                            if let Lane::Open(tx) = std::mem::replace(&mut *second, Lane::Untried) {
                                // Read only: nothing to undo, and a connection that cannot
                                // end its transaction is closed rather than pooled.
                                let _ = tx.rollback().await;
                            }
                        }
                        // The page is read again below, where an error is the caller's.
                        Err(_) => *second = Lane::Unavailable,
                    }
                }
            }
            let mut conn = tx.lock().await;
            let (page, postings) = journal_between(&mut conn, after, limit, i64::MAX).await?;
            drop(conn);
            with_postings(page, postings)
        })
    }
}

#[async_trait]
impl Snapshot for PgSnapshot {
    fn head(&self) -> &Head {
        &self.head
    }
    /// The server selects and sends the next page while the pass checks this one.
    async fn journal_page(&self, after: u64, n: u32) -> Result<JournalPage> {
        let (after, limit) = (i64_of(after), i64::from(n.clamp(1, JOURNAL_PAGE_MAX)));
        self.ahead
            .page(after, limit, |after, limit, lane| {
                self.read_page(after, limit, lane)
            })
            .await
    }
    async fn balances(
        &self,
        f: &BalanceFilter,
        after: Option<(String, String)>,
        n: u32,
    ) -> Result<Vec<BalanceRow>> {
        let mut tx = self.tx.lock().await;
        balances_page(&mut tx, f, after, n).await
    }
    async fn lots(&self, lots: &[String]) -> Result<Vec<ledger::Lot>> {
        let mut tx = self.tx.lock().await;
        lots_by_number(&mut tx, lots).await
    }
    /// Parts of [`BALANCE_PART_BLOCKS`] pages of the table, counted from its size now: a
    /// row version this snapshot sees was written before it began, so lies in a page that
    /// existed then; pages added since hold only versions it does not see.
    async fn balance_parts(&self) -> Result<Option<u32>> {
        let mut tx = self.tx.lock().await;
        let pages: i64 = sqlx::query_scalar(
            "select pg_relation_size('balances') / current_setting('block_size')::bigint",
        )
        .fetch_one(&mut **tx)
        .await
        .map_err(err)?;
        let parts = u64::try_from(pages)
            .unwrap_or(0)
            .div_ceil(BALANCE_PART_BLOCKS);
        Ok(Some(u32::try_from(parts).map_err(|_| {
            StoreError::Corrupt(format!("a balances table of {pages} pages"))
        })?))
    }
    /// The part's pages read in table order (a TID range scan), sent by a binary `COPY`, on
    /// a task of its own: the caller looks up the part before while the server sends this
    /// one and the task takes it in.
    async fn balance_part(&self, part: u32) -> Result<store::BalancePage> {
        let from = u64::from(part) * BALANCE_PART_BLOCKS;
        let to = from + BALANCE_PART_BLOCKS;
        let tx = Arc::clone(&self.tx);
        let read = tokio::spawn(async move {
            let mut tx = tx.lock().await;
            // Integers only are formatted into the statement: COPY takes no parameters.
            let bytes = copy::binary(
                &mut tx,
                &format!(
                    "select account, lot, qty, value from balances
                     where ctid >= '({from},0)'::tid and ctid < '({to},0)'::tid
                       and (qty <> 0 or value <> 0)"
                ),
                BALANCE_PART_STREAM_BYTES,
            )
            .await?;
            drop(tx);
            let mut rows = copy::Rows::new(&bytes, 4)?;
            // A balance takes about 64 bytes of the stream (four lengths, two texts, two
            // integers).
            let mut page = store::BalancePage::in_any_order(bytes.len() / 64);
            while rows.next_row()? {
                let (account, lot) = (rows.text()?, rows.text()?);
                page.push(account, lot, rows.int()?, rows.int()?);
            }
            Ok(page)
        });
        read.await
            .map_err(|e| StoreError::Backend(format!("reading balance part {part}: {e}")))?
    }
    async fn balances_hint(&self) -> Result<u64> {
        let mut tx = self.tx.lock().await;
        // A count would read the table. The planner's estimate is -1 until the table is first
        // analysed, which is never where autovacuum is off and not yet after a bulk import; the
        // pass's tables then doubled their way to every key (the journal's read at 1.09M
        // postings 1.66 s against 1.25 s, medians of six alternating runs). So the table's size
        // gives a floor: a balance row takes at least so many bytes of it (BALANCES_HINT_SQL).
        let n: i64 = sqlx::query_scalar(BALANCES_HINT_SQL)
            .fetch_one(&mut **tx)
            .await
            .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
    async fn lot_items(&self, after: &str, n: u32) -> Result<Vec<(String, String)>> {
        let mut tx = self.tx.lock().await;
        execute_each(&mut tx, &LOT_ITEMS_BY_KEY).await?;
        let page = sqlx::query_as(LOT_ITEMS_PAGE_SQL)
            .bind(after)
            .bind(i64::from(n.clamp(1, store::LOT_ITEMS_PAGE_MAX)))
            .fetch_all(&mut **tx)
            .await
            .map_err(err)?;
        execute_each(&mut tx, &LOT_ITEMS_PLANNED_AS_BEFORE).await?;
        Ok(page)
    }
    async fn shipment_mismatches(&self) -> Result<Vec<ShipmentMismatch>> {
        let mut tx = self.tx.lock().await;
        shipments::mismatches(&mut tx).await
    }
}

/// A page of the lots table after `$1`, at most `$2`, in the primary key's order: the column
/// is `collate "C"`, byte order as on SQLite. Public for the test of its plan (`tests/open.rs`).
#[doc(hidden)]
pub const LOT_ITEMS_PAGE_SQL: &str =
    "select lot, sku from lots where lot > $1 order by lot limit $2";

/// Run on a snapshot before [`LOT_ITEMS_PAGE_SQL`]: the page is read through the primary key.
/// Without statistics the planner read every lot and sorted them for each page, spilling the
/// sort to disk: 48 ms a page of 65 536 at 140 000 lots, three pages in a reconciliation of
/// 1.09M postings (at 1.3M lots it chose the key itself). The setting is made inside a
/// savepoint that [`LOT_ITEMS_PLANNED_AS_BEFORE`] rolls back after the page, so the
/// snapshot's other reads (the transit check's joins) are planned as before.
#[doc(hidden)]
pub const LOT_ITEMS_BY_KEY: [&str; 2] = ["savepoint lot_items", "set local enable_seqscan = off"];
/// Run on a snapshot after [`LOT_ITEMS_PAGE_SQL`]: undoes [`LOT_ITEMS_BY_KEY`]'s setting (a
/// read-only transaction's savepoint holds nothing else), and ends the savepoint, so that
/// pages do not pile savepoints up.
#[doc(hidden)]
pub const LOT_ITEMS_PLANNED_AS_BEFORE: [&str; 2] = [
    "rollback to savepoint lot_items",
    "release savepoint lot_items",
];

/// Runs `statements` one after another, each a round trip of its own (the extended protocol
/// takes one statement at a time).
async fn execute_each(conn: &mut PgConnection, statements: &[&str]) -> Result<()> {
    for statement in statements {
        sqlx::query(statement)
            .execute(&mut *conn)
            .await
            .map_err(err)?;
    }
    Ok(())
}

/// About how many balances there are: the planner's estimate, or the table's size over the
/// fewest bytes a balance row can take of it where that says more (no estimate yet, or an old
/// one). The fewest is 96: a tuple header (24), its line pointer (4), two `bigint`s (16), a
/// `boolean` and three short texts (about 30), at a fill factor of 80 (migration 0011). Rows
/// updated in place leave dead tuples behind, so a real table takes more (125 bytes a row at
/// 1.09M postings, after an import) and the hint errs high, which costs only room.
const BALANCES_HINT_SQL: &str = "select greatest(reltuples::bigint, pg_relation_size(oid) / 96)
     from pg_class where oid = 'balances'::regclass";

/// Plans the rest of the transaction's reads as a snapshot's reads must be planned: on the
/// snapshot's transaction and on the second connection that reads half its journal.
///
/// A snapshot reads ranges in key order (journal pages by seq, balances by account and lot):
/// an index scan returns them in that order. Where the planner has no statistics (tables never
/// analysed: after a bulk import, and always where autovacuum is off) it estimates a page of
/// postings at a tenth of its rows and picks a bitmap scan and a sort instead, which spilled
/// to disk: 41 ms a page of 44 000 postings against 19 ms for the index scan, most of a
/// pass's time on the server. A page of entries bounded by the head as well as by its limit
/// is worse: the bitmap scan reads every entry up to the head and sorts them for the first
/// 4 096, 250 ms a page at 1.3M entries and a pass of 10M postings four times as long (the
/// second connection had no such setting in session 13).
async fn plan_reads_in_key_order(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("set local enable_bitmapscan = off")
        .execute(conn)
        .await
        .map_err(err)?;
    Ok(())
}

/// Plans the rest of the transaction's reads by index only: a page of a list, whose rows an
/// index gives in the page's order from the cursor on. Without statistics the planner
/// expects a filter to keep a few rows, and then prefers reading every row of the table (by a
/// scan or a bitmap) and sorting them for each page, which makes paging through a list
/// quadratic in its length.
#[doc(hidden)]
pub async fn plan_reads_by_index(conn: &mut PgConnection) -> Result<()> {
    // Both settings in one round trip (`set_config(..., true)` is `set local`): a list's page
    // pays for its transaction's begin and commit already.
    sqlx::query(
        "select set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)",
    )
    .execute(conn)
    .await
    .map_err(err)?;
    Ok(())
}

/// A transaction of the pool's for a snapshot's second connection, planned as the snapshot's
/// own reads are. Public for the test that holds its journal pages to the primary keys where
/// the planner has no statistics (`tests/open.rs`).
#[doc(hidden)]
pub async fn open_lane(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await.map_err(err)?;
    plan_reads_in_key_order(&mut tx).await?;
    Ok(tx)
}

/// A journal page's entries: after `after`, up to `upto`, at most `limit`. Integers only are
/// formatted into it and into [`postings_page_sql`]: `COPY` takes no parameters. Public for
/// the test of their plans (`tests/open.rs`).
#[doc(hidden)]
pub fn entries_page_sql(after: i64, upto: i64, limit: i64) -> String {
    format!(
        "select seq, date, kind, document, actor, reverses, memo, hash
         from entries where seq > {after} and seq <= {upto} order by seq limit {limit}"
    )
}

/// The postings of entries `after + 1 ..= last`, in order (see [`entries_page_sql`]).
#[doc(hidden)]
pub fn postings_page_sql(after: i64, last: i64) -> String {
    format!(
        "select seq, account, sku, lot, qty, value
         from postings where seq > {after} and seq <= {last} order by seq, idx"
    )
}

/// Room for an entry in a `COPY` stream: it takes about 141 bytes (eight lengths, the hash's
/// 64 characters, a date, a document id, an actor and a short memo).
const ENTRY_STREAM_BYTES: usize = 200;

/// Room for an entry's postings in a `COPY` stream: a posting takes about 88 bytes (six
/// lengths, two integers, three short texts), and an entry has seven on average but 13 in
/// the stretches of the generated journal where batches of many lines are dispatched and
/// acknowledged (4.8 MB for a page of 4 096 entries at 1.09M postings).
const POSTINGS_STREAM_BYTES_PER_ENTRY: usize = 16 * 88;

/// A page of the journal for a full pass, of at most `limit` entries after `after` and up to
/// `upto`: the same two reads as [`entries_between`], each by a binary `COPY` (see `copy.rs`)
/// copied into the page's buffer column by column, where a query made a row object per
/// posting and decoded each column through it. The server's time is the same either way; the
/// client's is what this saves (`ppe verify` of 1.09M postings, alternating: 2.4-3.1 s against
/// 3.0-3.6 s). The postings come back as the server sent them, for [`with_postings`] (none
/// when the page is empty).
async fn journal_between(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
    upto: i64,
) -> Result<(JournalPage, Option<Vec<u8>>)> {
    let entry_count = usize::try_from(limit).unwrap_or(0);
    let entries = copy::binary(
        conn,
        &entries_page_sql(after, upto, limit),
        entry_count * ENTRY_STREAM_BYTES,
    )
    .await?;
    let mut rows = copy::Rows::new(&entries, 8)?;
    let mut page = JournalPage::with_capacity(entry_count);
    while rows.next_row()? {
        page.push_entry(EntryColumns {
            seq: rows.int()?,
            date: rows.text()?,
            kind: rows.text()?,
            document: rows.text()?,
            actor: rows.text()?,
            reverses: rows.opt_int()?,
            memo: rows.text()?,
            hash: rows.text()?,
        });
    }
    let Some(last) = page.last_seq() else {
        return Ok((page, None));
    };
    drop(entries);
    let postings = copy::binary(
        conn,
        &postings_page_sql(after, last),
        page.len() * POSTINGS_STREAM_BYTES_PER_ENTRY,
    )
    .await?;
    Ok((page, Some(postings)))
}

/// The page with the postings of a `COPY` stream of (seq, account, sku, lot, qty, value) rows
/// added to their entries: outside the connection's lock, so that the connection is free for
/// the next page's statements while this one's postings, the bulk of it, are taken in.
fn with_postings(mut page: JournalPage, postings: Option<Vec<u8>>) -> Result<JournalPage> {
    let Some(postings) = postings else {
        return Ok(page);
    };
    let mut rows = copy::Rows::new(&postings, 6)?;
    while rows.next_row()? {
        let seq = rows.int()?;
        page.push_posting(
            seq,
            PostingColumns {
                account: rows.text()?,
                sku: rows.text()?,
                lot: rows.text()?,
                qty: rows.int()?,
                value: rows.int()?,
            },
        );
    }
    Ok(page)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn base_currency(&self) -> Result<String> {
        sqlx::query_scalar("select base_currency from ledger where id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(err)
    }

    async fn insert_item(&self, item: &Item) -> Result<Inserted<Item>> {
        // Insert-or-find in one statement: a concurrent twin cannot slip between check and write.
        let done = sqlx::query("insert into items (sku, name, kind, unit, decimals, shelf_life_days) values ($1, $2, $3, $4, $5, $6) on conflict (sku) do nothing")
            .bind(item.sku().as_str())
            .bind(item.name())
            .bind(item.kind().as_str())
            .bind(item.unit())
            .bind(i64::from(item.decimals()))
            .bind(item.shelf_life_days().map(i64::from))
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 1 {
            return Ok(Inserted::Created);
        }
        Ok(Inserted::Existing(
            self.item(item.sku().as_str())
                .await?
                .ok_or_else(|| StoreError::Backend("item vanished".into()))?,
        ))
    }
    async fn item(&self, sku: &str) -> Result<Option<Item>> {
        let row = sqlx::query("select * from items where sku = $1")
            .bind(sku)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.as_ref().map(item_row).transpose()
    }
    async fn items(&self, after: Option<&str>, n: u32) -> Result<Vec<Item>> {
        let rows = sqlx::query("select * from items where sku > $1 order by sku limit $2")
            .bind(after.unwrap_or(""))
            .bind(limit(n))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        rows.iter().map(item_row).collect()
    }

    async fn insert_party(&self, p: &Party) -> Result<Inserted<Party>> {
        let done = sqlx::query("insert into parties (code, name, kind, country, city, parent) values ($1, $2, $3, $4, $5, $6) on conflict (code) do nothing")
            .bind(p.code().as_str())
            .bind(p.name())
            .bind(p.kind().as_str())
            .bind(p.country())
            .bind(p.city())
            .bind(p.parent().map(|c| c.as_str()))
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 1 {
            return Ok(Inserted::Created);
        }
        Ok(Inserted::Existing(
            self.party(p.code().as_str())
                .await?
                .ok_or_else(|| StoreError::Backend("party vanished".into()))?,
        ))
    }
    async fn party(&self, code: &str) -> Result<Option<Party>> {
        let row = sqlx::query("select * from parties where code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.as_ref().map(party_row).transpose()
    }
    async fn parties(&self, after: Option<&str>, n: u32) -> Result<Vec<Party>> {
        let rows = sqlx::query("select * from parties where code > $1 order by code limit $2")
            .bind(after.unwrap_or(""))
            .bind(limit(n))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        rows.iter().map(party_row).collect()
    }

    async fn insert_location(&self, l: &Location) -> Result<Inserted<Location>> {
        let done = sqlx::query(
            "insert into locations (code, name) values ($1, $2) on conflict (code) do nothing",
        )
        .bind(l.code().as_str())
        .bind(l.name())
        .execute(&self.pool)
        .await
        .map_err(err)?;
        if done.rows_affected() == 1 {
            return Ok(Inserted::Created);
        }
        Ok(Inserted::Existing(
            self.location(l.code().as_str())
                .await?
                .ok_or_else(|| StoreError::Backend("location vanished".into()))?,
        ))
    }
    async fn location(&self, code: &str) -> Result<Option<Location>> {
        let row = sqlx::query("select * from locations where code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.as_ref().map(location_row).transpose()
    }
    async fn locations(&self, after: Option<&str>, n: u32) -> Result<Vec<Location>> {
        let rows = sqlx::query("select * from locations where code > $1 order by code limit $2")
            .bind(after.unwrap_or(""))
            .bind(limit(n))
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        rows.iter().map(location_row).collect()
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<Inserted<TokenRecord>> {
        let done = sqlx::query("insert into tokens (name, role, token_hash, created_at, expires_at, revoked_at) values ($1, $2, $3, $4, $5, $6) on conflict (name) do nothing")
            .bind(&t.name)
            .bind(&t.role)
            .bind(&t.token_hash)
            .bind(&t.created_at)
            .bind(&t.expires_at)
            .bind(&t.revoked_at)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        if done.rows_affected() == 1 {
            return Ok(Inserted::Created);
        }
        let row = sqlx::query("select * from tokens where name = $1")
            .bind(&t.name)
            .fetch_one(&self.pool)
            .await
            .map_err(err)?;
        Ok(Inserted::Existing(token_row(&row)))
    }
    async fn secret(&self, name: &str, fresh: &str, created_at: &str) -> Result<String> {
        sqlx::query("insert into secrets (name, value, created_at) values ($1, $2, $3) on conflict (name) do nothing")
            .bind(name)
            .bind(fresh)
            .bind(created_at)
            .execute(&self.pool)
            .await
            .map_err(err)?;
        let row = sqlx::query("select value from secrets where name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(err)?;
        row.try_get("value").map_err(err)
    }
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("select * from tokens where token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        Ok(row.as_ref().map(token_row))
    }
    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("select * from tokens order by name")
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        Ok(rows.iter().map(token_row).collect())
    }
    async fn revoke_token(&self, name: &str, at: &str) -> Result<bool> {
        let done =
            sqlx::query("update tokens set revoked_at = $1 where name = $2 and revoked_at is null")
                .bind(at)
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn begin_read(&self) -> Result<Box<dyn store::ReadTx>> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        // One snapshot for every read (read committed takes one per statement), taken by the
        // head's read, which follows; and the writer's plans, which keyed reads need where
        // the planner has no statistics (`PgStore::open`). Text without arguments goes by the
        // simple query protocol, which runs both statements.
        sqlx::Executor::execute(
            &mut *tx,
            "set transaction isolation level repeatable read, read only;
             set local plan_cache_mode = force_generic_plan",
        )
        .await
        .map_err(err)?;
        let head = read_head(&mut tx, HEAD).await?;
        Ok(Box::new(write::PgReadTx { tx, head }))
    }

    async fn begin(&self) -> Result<Box<dyn WriteTx>> {
        // The row lock on the ledger head is held to commit, so what we read is what we write on top of.
        let mut w = self.writer.clone().lock_owned().await;
        if w.open {
            rollback(&mut w).await;
        }
        // A connection kept since the last batch may have broken meanwhile (the server
        // restarted, a proxy timed it out): a begin that fails on it, for any reason but the
        // head's lock, is tried once more on a new one, as nothing was done in it yet.
        let mut reused = w.conn.is_some();
        loop {
            if w.conn.is_none() {
                // Bounded as the pool's acquire was: an unreachable server is reported, not
                // waited for.
                let connect = <PgConnection as sqlx::Connection>::connect_with(&self.options);
                let timeout = std::time::Duration::from_millis(CONNECT_TIMEOUT_MS);
                w.conn = Some(
                    tokio::time::timeout(timeout, connect)
                        .await
                        .map_err(|_| {
                            StoreError::Backend(format!(
                                "no connection to the server within {CONNECT_TIMEOUT_MS} ms"
                            ))
                        })?
                        .map_err(err)?,
                );
            }
            w.open = true;
            let conn = w.conn.as_mut().expect("connected above");
            // Text without arguments goes by the simple query protocol, which runs both
            // statements.
            let begun = sqlx::Executor::fetch_one(conn, BEGIN_HEAD)
                .await
                .map_err(err);
            match begun.and_then(|row| head_row(&row)) {
                Ok(head) => return Ok(Box::new(PgWriteTx::new(w, head))),
                Err(e) => {
                    rollback(&mut w).await;
                    if !reused || matches!(e, StoreError::Busy(_)) {
                        return Err(e);
                    }
                    tracing::info!(error = %e, "the writer's connection failed to begin; reconnecting");
                    w.conn = None;
                    reused = false;
                }
            }
        }
    }

    async fn head(&self) -> Result<Head> {
        let mut conn = self.pool.acquire().await.map_err(err)?;
        read_head(&mut conn, HEAD).await
    }

    async fn document(&self, namespace: &str, id: &str) -> Result<Option<DocumentRecord>> {
        let row = sqlx::query("select * from documents where namespace = $1 and id = $2")
            .bind(namespace)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.as_ref().map(document_row).transpose()
    }
    async fn documents(
        &self,
        kind: &str,
        after: Option<u64>,
        n: u32,
    ) -> Result<Vec<(u64, DocumentRecord)>> {
        let rows = sqlx::query(
            "select * from documents where kind = $1 and pos > $2 order by pos limit $3",
        )
        .bind(kind)
        .bind(after.map_or(0, i64_of))
        .bind(limit(n))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|r| Ok((decode::seq(r.get("pos")), document_row(r)?)))
            .collect()
    }
    async fn idempotency(&self, actor: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        let row = sqlx::query("select * from idempotency where actor = $1 and key = $2")
            .bind(actor)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
        row.as_ref().map(idempotency_row).transpose()
    }

    async fn entries(&self, after: u64, n: u32) -> Result<Vec<StoredEntry>> {
        // One connection for both statements; without a transaction the postings read is a
        // second snapshot, which is safe because entries and postings are append-only.
        let mut conn = self.pool.acquire().await.map_err(err)?;
        entries_between(&mut conn, i64_of(after), limit(n)).await
    }
    async fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        let mut tx = self.pool.begin().await.map_err(err)?;
        // Before any other statement of the transaction: its snapshot is then taken by the
        // first read (the head's) and kept to the end.
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        plan_reads_in_key_order(&mut tx).await?;
        let head = read_head(&mut tx, HEAD).await?;
        Ok(Box::new(PgSnapshot {
            head,
            tx: Arc::new(tokio::sync::Mutex::new(tx)),
            lane: Arc::new(tokio::sync::Mutex::new(Lane::Untried)),
            pool: self.pool.clone(),
            ahead: store::ReadAhead::new(2),
        }))
    }
    async fn entries_of(&self, seqs: &[u64]) -> Result<Vec<StoredEntry>> {
        let mut seqs: Vec<i64> = seqs.iter().map(|&s| i64_of(s)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await.map_err(err)?;
        // Each number looked up by key (lateral, behind `offset 0`), whatever the planner
        // knows of the tables. Entries and their postings are append-only, so the two
        // statements agree without a transaction.
        let rows = sqlx::query(&format!(
            "select e.* from unnest($1::bigint[]) as s (seq),
                 lateral (select {ENTRY_COLUMNS} from entries where seq = s.seq offset 0) e
             order by e.seq"
        ))
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?;
        let postings = sqlx::query(&format!(
            "select p.* from unnest($1::bigint[]) as s (seq),
                 lateral (select {POSTING_COLUMNS}, idx from postings where seq = s.seq offset 0) p
             order by p.seq, p.idx"
        ))
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?;
        entries_of_rows(&rows, &postings)
    }

    async fn balances(
        &self,
        f: &BalanceFilter,
        after: Option<(String, String)>,
        n: u32,
    ) -> Result<Vec<BalanceRow>> {
        let mut conn = self.pool.acquire().await.map_err(err)?;
        balances_page(&mut conn, f, after, n).await
    }

    async fn trial_balance(&self, as_of: Option<time::Date>) -> Result<Vec<BalanceRow>> {
        // From the postings, not the maintained balances: the report an auditor trusts is the
        // one recomputed from the journal. Entries are read only for a date: the whole journal
        // is one scan of postings, with no lookup of each posting's entry.
        let rows = sqlx::query(
            "select p.account, p.sku, p.lot, cast(sum(p.qty) as bigint) as qty, cast(sum(p.value) as bigint) as value
             from postings p
             where $1::text is null or p.seq in (select seq from entries where date <= $1::text)
             group by p.account, p.sku, p.lot
             having sum(p.qty) <> 0 or sum(p.value) <> 0
             order by p.account, p.sku, p.lot",
        )
        .bind(as_of.map(|d| d.to_string()))
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        Ok(rows.iter().map(balance_row).collect())
    }

    async fn conservation_violations(&self) -> Result<Vec<Violation>> {
        // The statements are the store crate's; this backend runs them and reads the columns
        // a finding names, where the statement has them.
        let rows = |sql: &'static str| async move {
            let found = sqlx::query(sql).fetch_all(&self.pool).await.map_err(err)?;
            Ok(found
                .iter()
                .map(|r| store::conservation::CheckRow {
                    seq: r.try_get("seq").ok(),
                    account: r.try_get("account").ok(),
                    sku: r.try_get("sku").ok(),
                    lot: r.try_get("lot").ok(),
                    q: r.try_get("q").ok(),
                    s: r.try_get("s").ok(),
                })
                .collect())
        };
        store::conservation::violations(rows, self.lot_item_violations(), self.balance_mismatches())
            .await
    }

    async fn lot_item_violations(&self) -> Result<Vec<Violation>> {
        let mut out = Vec::new();
        for r in sqlx::query("select p.seq, p.account, p.sku, p.lot from postings p join lots l on l.lot = p.lot where p.sku <> l.sku order by p.seq")
            .fetch_all(&self.pool)
            .await
            .map_err(err)?
        {
            out.push(Violation {
                check: "lot-item",
                seq: Some(decode::seq(r.get("seq"))),
                account: Some(r.get("account")),
                sku: Some(r.get("sku")),
                lot: Some(r.get("lot")),
                is_value: false,
                expected: 0,
                found: 0,
            });
        }
        Ok(out)
    }

    async fn stock(&self) -> Result<Vec<StockRow>> {
        let rows = sqlx::query(
            "select substr(b.account, 7) as location, b.sku, b.lot, b.qty, b.value, l.expires_on
             from balances b join lots l on l.lot = b.lot
             where b.account like 'stock:%' and (b.qty <> 0 or b.value <> 0)
             order by b.account, b.sku, b.lot",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|r| {
                let b = decode::balance(r.get("qty"), r.get("value"));
                Ok(StockRow {
                    location: r.get("location"),
                    sku: r.get("sku"),
                    lot: r.get("lot"),
                    quantity: b.qty,
                    value: b.value,
                    expires_on: decode::opt_date(r.get("expires_on"))?,
                })
            })
            .collect()
    }

    async fn lots(&self, lots: &[String]) -> Result<Vec<ledger::Lot>> {
        let mut conn = self.pool.acquire().await.map_err(err)?;
        lots_by_number(&mut conn, lots).await
    }

    async fn insert_baseline(&self, rows: u64, per_commit: usize) -> Result<()> {
        write::insert_baseline(&self.pool, rows, per_commit).await
    }

    async fn lot_postings(&self, lot: &str) -> Result<Vec<LotPosting>> {
        let rows = sqlx::query(
            // Lateral subqueries behind `offset 0` keep the plan a nested loop of index
            // lookups whatever the statistics: before the tables are analysed the planner
            // estimates tens of thousands of postings per lot, and hashed all of `entries`
            // (10 ms a lot at 20 000 entries, growing with the journal; a trace walks many)
            // or, with the lot's postings read straight from `postings`, gathered them with
            // parallel workers (about 2 ms a lot to start them, 343 ms for a trace at 10M
            // postings). Reached from the lot's row, the postings are a parameterized scan,
            // which is never parallel.
            "select p.seq, e.date, e.kind, e.document, p.account, p.qty, p.value
             from lots l
             cross join lateral (
                 select q.seq, q.idx, q.account, q.qty, q.value from postings q
                 where q.lot = l.lot offset 0
             ) p
             cross join lateral (
                 select x.date, x.kind, x.document from entries x where x.seq = p.seq offset 0
             ) e
             where l.lot = $1 order by p.seq, p.account, p.idx",
        )
        .bind(lot)
        .fetch_all(&self.pool)
        .await
        .map_err(err)?;
        rows.iter()
            .map(|r| {
                let b = decode::balance(r.get("qty"), r.get("value"));
                Ok(LotPosting {
                    seq: decode::seq(r.get("seq")),
                    date: decode::date(r.get::<&str, _>("date"))?,
                    kind: r.get("kind"),
                    document: r.get("document"),
                    account: r.get("account"),
                    qty: b.qty,
                    value: b.value,
                })
            })
            .collect()
    }

    async fn balance_mismatches(&self) -> Result<Vec<BalanceMismatch>> {
        // Recompute every balance from the postings and compare, in both directions (a balance
        // row with no postings, postings with no balance row). Sums of bigint are numeric here.
        let rows = sqlx::query(
            "with posted as (select account, lot, sum(qty)::bigint as qty, sum(value)::bigint as value from postings group by account, lot)
             select coalesce(b.account, p.account) as account, coalesce(b.lot, p.lot) as lot,
                    coalesce(b.qty, 0) as bq, coalesce(b.value, 0) as bv, coalesce(p.qty, 0) as pq, coalesce(p.value, 0) as pv
             from balances b full outer join posted p on p.account = b.account and p.lot = b.lot
             where coalesce(b.qty, 0) <> coalesce(p.qty, 0) or coalesce(b.value, 0) <> coalesce(p.value, 0)
             order by 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| {
            // numeric_value_out_of_range: postings written outside the service can sum past
            // 64 bits.
            let overflow = matches!(&e, sqlx::Error::Database(db) if db.code().as_deref() == Some("22003"));
            match err(e) {
                StoreError::Backend(m) if overflow => StoreError::Corrupt(format!(
                    "balances cannot be recomputed from the postings: {m}"
                )),
                other => other,
            }
        })?;
        Ok(rows
            .iter()
            .map(|r| BalanceMismatch {
                account: r.get("account"),
                lot: r.get("lot"),
                maintained_qty: r.get("bq"),
                maintained_value: r.get("bv"),
                posted_qty: r.get("pq"),
                posted_value: r.get("pv"),
            })
            .collect())
    }

    async fn shipment(&self, id: &str) -> Result<Option<Shipment>> {
        let mut conn = self.pool.acquire().await.map_err(err)?;
        let found =
            shipments::select(&mut conn, Some(id), &ShipmentFilter::default(), 0, 1).await?;
        Ok(found.into_iter().next())
    }
    async fn shipments(
        &self,
        filter: &ShipmentFilter,
        after: Option<u64>,
        n: u32,
    ) -> Result<Vec<Shipment>> {
        // A page of a list: in a transaction of its own whose reads are planned by index.
        let mut tx = self.pool.begin().await.map_err(err)?;
        plan_reads_by_index(&mut tx).await?;
        let page =
            shipments::select(&mut tx, None, filter, after.map_or(0, i64_of), limit(n)).await?;
        tx.commit().await.map_err(err)?;
        Ok(page)
    }
    async fn documents_for(
        &self,
        kind: &str,
        document: &str,
        after: Option<u64>,
        n: u32,
    ) -> Result<Vec<(u64, DocumentRecord)>> {
        let mut conn = self.pool.acquire().await.map_err(err)?;
        shipments::documents_for(&mut conn, kind, document, after, limit(n)).await
    }
    async fn put_bom(&self, bom: &ledger::production::Bom) -> Result<BomPut> {
        production::put_bom(&self.pool, bom).await
    }
    async fn bom(&self, product_sku: &str, version: &str) -> Result<Option<StoredBom>> {
        production::bom(&self.pool, product_sku, version).await
    }
    async fn boms(&self, after: Option<(String, String)>, n: u32) -> Result<Vec<StoredBom>> {
        production::boms(&self.pool, after, n).await
    }
    async fn production_runs(
        &self,
        filter: &RunFilter,
        after: Option<u64>,
        n: u32,
    ) -> Result<Vec<RunReportRow>> {
        production::runs(&self.pool, filter, after, n).await
    }
}
