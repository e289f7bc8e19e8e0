//! Store on an embedded SQLite file, the default backend: WAL, `synchronous=FULL`, foreign
//! keys on, the file created if missing, migrations run on open.
//!
//! Writes go through one writer connection that takes `BEGIN IMMEDIATE`, so there is exactly
//! one write path per database file (DESIGN section 3); reads use a separate small pool.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ledger::{Hash, Item, Location, Party, Shipment};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use store::decode::{self, RawEntry, RawPosting};
use store::Snapshot;
use store::{
    BalanceFilter, BalanceMismatch, BalanceRow, BomPut, DocumentRecord, Head, IdempotencyRecord,
    Inserted, JsonText, LotPosting, Result, RunFilter, RunReportRow, ShipmentFilter, StockRow,
    Store, StoreError, StoredBom, StoredEntry, TokenRecord, Violation, WriteTx, PAGE_MAX,
};

mod journal;
mod production;
mod shipments;
mod write;

/// The writer's lookup of the lots to pick from, public for the test that holds its plan to the
/// index of guarded balances (`tests/open.rs`).
#[doc(hidden)]
pub use write::LOT_GROUPS_SQL;

use write::SqliteWriteTx;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// Rows per multi-row insert. Every full chunk is the same statement, prepared once; 9
/// columns x 100 rows stays far below SQLite's variable limit.
pub(crate) const ROWS_PER_INSERT: usize = 100;

pub(crate) fn err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        let msg = db.message().to_owned();
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6) ask the caller to try again.
        if matches!(db.code().as_deref(), Some("5") | Some("6") | Some("517"))
            || msg.contains("database is locked")
        {
            return StoreError::Busy(msg);
        }
        if db.is_check_violation()
            || db.is_unique_violation()
            || db.is_foreign_key_violation()
            || msg.contains("append-only")
        {
            return StoreError::Constraint(msg);
        }
    }
    StoreError::Backend(e.to_string())
}

/// Pages the WAL may hold before the writer checkpoints it itself, in the commit that passes
/// the mark: a backstop, for when the background checkpointer falls behind. SQLite's default
/// (1 000 pages, 4 MB) made nearly every commit of an import or of an HTTP burst also copy the
/// WAL into the database file and sync it, under the write lock: 12 % of all CPU in a profile
/// of the HTTP benchmark, on the path every request waits for.
const WAL_BACKSTOP_PAGES: u32 = 16_384;

/// How long the background checkpointer rests after a checkpoint; commits made meanwhile are
/// copied by the next one. A checkpoint running beside the writer slows the writer's
/// `begin immediate` (measured under the HTTP benchmark: with a checkpoint after every commit,
/// a third of the begins took 1-3 ms against 0.1-0.3 ms, and a begin averaged 0.8 ms; resting
/// 100 ms between checkpoints brought it to 0.17 ms and the benchmark from about 4 000 to
/// 4 700 documents/s). The WAL grows by what 100 ms of commits write, far below the backstop.
const CHECKPOINT_PAUSE_MS: u64 = 100;

/// The one connection that writes: the writer's batches and the few direct writes (master
/// data, tokens, secrets, bills of materials) take it in turn, in arrival order (tokio's
/// mutex is fair). A mutex rather than a pool of one connection: sqlx's pool tests a
/// connection each time it is given back, with a round trip to the connection's worker
/// thread on a task of its own that the next batch waited for, and its transactions begin
/// in a round trip of their own; a batch here begins and reads the head in one. Under the
/// HTTP benchmark's load that took a batch's begin from 1.25-1.39 ms to 0.57-0.79 ms (0.15-0.17
/// ms with the checkpointer's rest, `CHECKPOINT_PAUSE_MS`).
pub(crate) struct WriterConn {
    pub(crate) conn: SqliteConnection,
    /// A batch's transaction was begun and neither committed nor rolled back: its
    /// `SqliteWriteTx` was dropped where no rollback could be started. The next holder rolls
    /// it back first.
    pub(crate) open: bool,
}

impl std::fmt::Debug for WriterConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConn")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

type Writer = Arc<tokio::sync::Mutex<WriterConn>>;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: Writer,
    /// Tells the background checkpointer that a commit added to the WAL.
    checkpoint: tokio::sync::mpsc::Sender<()>,
    /// Reads whole journals on a connection of its own (see `journal.rs`).
    journal: journal::JournalReader,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite:` URL and migrates it.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{url}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS));
        // Every connection of the store must open the same file, the journal reader's
        // included (see `journal.rs`); and a ledger kept in memory would lose what it
        // acknowledged when the process ends. sqlx names an in-memory database
        // `file:sqlx-in-memory-N` (`sqlite::memory:`) or leaves the name empty
        // (`sqlite://?mode=memory`).
        let path = options.get_filename().to_path_buf();
        let name = path.to_string_lossy();
        if name.is_empty() || name == ":memory:" || name.starts_with("file:sqlx-in-memory-") {
            return Err(StoreError::BadUrl(format!(
                "{url}: an in-memory database is not kept; name a file (sqlite://FILE)"
            )));
        }
        // One writer connection: the single serialised write path of this process. A
        // multi-row insert into a table with constraints keeps a statement journal, so that a
        // refused statement can be undone alone: in memory rather than in a temporary file
        // (a profile of a bulk import showed a fifth of the time in its pwrite calls). A large
        // batch touches more pages than the default 2 MB cache holds, and spilling them to the
        // WAL before the commit costs as much again: the writer gets 16 MB (more bought little
        // speed and a lot of resident memory). Neither changes
        // durability: the WAL is still synced at every commit (synchronous=FULL).
        let mut writer = <SqliteConnection as sqlx::Connection>::connect_with(
            &options
                .clone()
                .pragma("temp_store", "memory")
                .pragma("cache_size", "-16384")
                .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES.to_string()),
        )
        .await
        .map_err(err)?;
        MIGRATOR
            .run(&mut writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        let writer = Arc::new(tokio::sync::Mutex::new(WriterConn {
            conn: writer,
            open: false,
        }));
        // Readers sort whole journals for reports and verify: a 16 MB cache each lets a sort
        // of a few hundred thousand postings stay in memory before it spills to a file.
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(
                options
                    .clone()
                    .read_only(true)
                    .pragma("cache_size", "-16384"),
            )
            .await
            .map_err(err)?;
        let checkpoint = spawn_checkpointer(options).await?;
        Ok(SqliteStore {
            reader,
            writer,
            checkpoint,
            journal: journal::JournalReader::new(path, Duration::from_millis(BUSY_TIMEOUT_MS)),
        })
    }

    /// The writer connection, once the transaction a dropped batch left open (if any) is
    /// rolled back.
    async fn writer(&self) -> tokio::sync::OwnedMutexGuard<WriterConn> {
        let mut w = self.writer.clone().lock_owned().await;
        if w.open {
            rollback(&mut w).await;
        }
        w
    }
}

/// Rolls back the transaction a batch left open. A rollback that fails otherwise than for
/// want of a transaction leaves `open` set, so that the next holder tries again.
pub(crate) async fn rollback(w: &mut WriterConn) {
    match sqlx::query("rollback").execute(&mut w.conn).await {
        Ok(_) => w.open = false,
        // A `begin immediate` that failed (busy) began nothing to roll back.
        Err(e) if e.to_string().contains("no transaction is active") => w.open = false,
        Err(e) => tracing::warn!(error = %e, "rolling back an abandoned batch failed"),
    }
}

/// Copies committed WAL frames into the database file on a connection of its own, after
/// commits, so that the writer does not: a passive checkpoint takes no lock a writer or a
/// reader waits for, and runs beside the next batch, at most one every
/// `CHECKPOINT_PAUSE_MS`. Notifications that arrive while one runs or rests are merged into
/// the next. The task ends when the last handle of the store is dropped.
/// Durability does not depend on it: every commit syncs the WAL (`synchronous=FULL`), and a
/// WAL that was never checkpointed is replayed when the database is opened.
async fn spawn_checkpointer(
    options: SqliteConnectOptions,
) -> Result<tokio::sync::mpsc::Sender<()>> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(err)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            if let Err(e) = sqlx::query("pragma wal_checkpoint(passive)")
                .execute(&mut conn)
                .await
            {
                // A busy database or a full disk: the writer's backstop checkpoints instead.
                tracing::warn!(error = %e, "background checkpoint failed");
            }
            // Commits that arrive meanwhile are merged into the next checkpoint.
            tokio::time::sleep(Duration::from_millis(CHECKPOINT_PAUSE_MS)).await;
        }
        let _ = conn.close().await;
    });
    Ok(tx)
}

fn limit(n: u32) -> i64 {
    i64::from(n.clamp(1, PAGE_MAX))
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).expect("sequence numbers fit in i64")
}

/// The ledger's head.
const HEAD: &str = "select seq, hash, closed_through from ledger where id = 1";
/// The write lock, then the head it protects, in one round trip (a script of two statements).
const BEGIN_HEAD: &str =
    "begin immediate; select seq, hash, closed_through from ledger where id = 1";

/// The head, read by `sql` (`HEAD` or `BEGIN_HEAD`).
async fn read_head(conn: &mut sqlx::SqliteConnection, sql: &str) -> Result<Head> {
    let row = sqlx::query(sql).fetch_one(conn).await.map_err(err)?;
    let hash: String = row.get("hash");
    Ok(Head {
        seq: decode::seq(row.get("seq")),
        hash: Hash::from_hex(&hash)
            .ok_or_else(|| StoreError::Corrupt("ledger head hash".into()))?,
        closed_through: decode::opt_date(row.get("closed_through"))?,
    })
}

fn item_row(r: &sqlx::sqlite::SqliteRow) -> Result<Item> {
    decode::item(
        r.get("sku"),
        r.get("name"),
        r.get("kind"),
        r.get("unit"),
        r.get("decimals"),
        r.get("shelf_life_days"),
    )
}
fn party_row(r: &sqlx::sqlite::SqliteRow) -> Result<Party> {
    decode::party(
        r.get("code"),
        r.get("name"),
        r.get("kind"),
        r.get("country"),
        r.get("city"),
        r.get("parent"),
    )
}
fn location_row(r: &sqlx::sqlite::SqliteRow) -> Result<Location> {
    decode::location(r.get("code"), r.get("name"))
}
fn lot_row(r: &sqlx::sqlite::SqliteRow) -> Result<ledger::Lot> {
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
pub(crate) fn document_row(r: &sqlx::sqlite::SqliteRow) -> Result<DocumentRecord> {
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
fn idempotency_row(r: &sqlx::sqlite::SqliteRow) -> Result<IdempotencyRecord> {
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
fn token_row(r: &sqlx::sqlite::SqliteRow) -> TokenRecord {
    TokenRecord {
        name: r.get("name"),
        role: r.get("role"),
        token_hash: r.get("token_hash"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
    }
}
/// A column of an entry or posting row. SQLite keeps whatever type it is given, so a value
/// written outside the service (text where an integer belongs) is reported as a corrupt
/// entry, which `verify` names, instead of failing the read.
fn column<'r, T>(r: &'r sqlx::sqlite::SqliteRow, seq: i64, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    r.try_get(name).map_err(|e| StoreError::CorruptEntry {
        seq: decode::seq(seq.max(1)),
        message: format!("column {name}: {e}"),
    })
}

fn row_seq(r: &sqlx::sqlite::SqliteRow) -> Result<i64> {
    r.try_get("seq")
        .map_err(|e| StoreError::Corrupt(format!("a row's seq cannot be read: {e}")))
}

fn raw_entry(r: &sqlx::sqlite::SqliteRow) -> Result<RawEntry> {
    let seq = row_seq(r)?;
    Ok(RawEntry {
        seq,
        date: column(r, seq, "date")?,
        kind: column(r, seq, "kind")?,
        document: column(r, seq, "document")?,
        actor: column(r, seq, "actor")?,
        reverses: column(r, seq, "reverses")?,
        memo: column(r, seq, "memo")?,
        hash: column(r, seq, "hash")?,
        recorded_at: column(r, seq, "recorded_at")?,
    })
}
fn raw_posting(r: &sqlx::sqlite::SqliteRow) -> Result<RawPosting> {
    let seq = row_seq(r)?;
    Ok(RawPosting {
        seq,
        account: column(r, seq, "account")?,
        sku: column(r, seq, "sku")?,
        lot: column(r, seq, "lot")?,
        qty: column(r, seq, "qty")?,
        value: column(r, seq, "value")?,
    })
}

const ENTRY_COLUMNS: &str = "seq, date, kind, document, actor, reverses, memo, hash, recorded_at";
const POSTING_COLUMNS: &str = "seq, account, sku, lot, qty, value";
/// Sequence numbers per `IN` list of `entries_of`: far below SQLite's limit of variables.
const ENTRIES_PER_QUERY: usize = 400;

/// The rows of `sql`, whose parameters are `seqs` in order. Not kept prepared: the text varies
/// with the number of them.
async fn rows_of_seqs(
    conn: &mut sqlx::SqliteConnection,
    sql: &str,
    seqs: &[i64],
) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
    seqs.iter()
        .fold(sqlx::query(sql), |q, s| q.bind(*s))
        .persistent(false)
        .fetch_all(conn)
        .await
        .map_err(err)
}

async fn entries_between(
    conn: &mut sqlx::SqliteConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEntry>> {
    let rows = sqlx::query(&format!(
        "select {ENTRY_COLUMNS} from entries where seq > ? order by seq limit ?"
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
        "select {POSTING_COLUMNS} from postings where seq > ? and seq <= ? order by seq, idx"
    ))
    .bind(after)
    .bind(last)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    decode::entries(
        rows.iter().map(raw_entry).collect::<Result<_>>()?,
        postings.iter().map(raw_posting).collect::<Result<_>>()?,
    )
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn base_currency(&self) -> Result<String> {
        sqlx::query_scalar("select base_currency from ledger where id = 1")
            .fetch_one(&self.reader)
            .await
            .map_err(err)
    }

    async fn insert_item(&self, item: &Item) -> Result<Inserted<Item>> {
        // Insert-or-find in one statement: a concurrent twin cannot slip between check and write.
        let done = sqlx::query("insert into items (sku, name, kind, unit, decimals, shelf_life_days) values (?, ?, ?, ?, ?, ?) on conflict (sku) do nothing")
            .bind(item.sku().as_str())
            .bind(item.name())
            .bind(item.kind().as_str())
            .bind(item.unit())
            .bind(i64::from(item.decimals()))
            .bind(item.shelf_life_days().map(i64::from))
            .execute(&mut self.writer().await.conn)
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
        let row = sqlx::query("select * from items where sku = ?")
            .bind(sku)
            .fetch_optional(&mut self.writer().await.conn)
            .await
            .map_err(err)?;
        row.as_ref().map(item_row).transpose()
    }
    async fn items(&self, after: Option<&str>, n: u32) -> Result<Vec<Item>> {
        let rows = sqlx::query("select * from items where sku > ? order by sku limit ?")
            .bind(after.unwrap_or(""))
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        rows.iter().map(item_row).collect()
    }

    async fn insert_party(&self, p: &Party) -> Result<Inserted<Party>> {
        let done = sqlx::query("insert into parties (code, name, kind, country, city, parent) values (?, ?, ?, ?, ?, ?) on conflict (code) do nothing")
            .bind(p.code().as_str())
            .bind(p.name())
            .bind(p.kind().as_str())
            .bind(p.country())
            .bind(p.city())
            .bind(p.parent().map(|c| c.as_str()))
            .execute(&mut self.writer().await.conn)
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
        let row = sqlx::query("select * from parties where code = ?")
            .bind(code)
            .fetch_optional(&mut self.writer().await.conn)
            .await
            .map_err(err)?;
        row.as_ref().map(party_row).transpose()
    }
    async fn parties(&self, after: Option<&str>, n: u32) -> Result<Vec<Party>> {
        let rows = sqlx::query("select * from parties where code > ? order by code limit ?")
            .bind(after.unwrap_or(""))
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        rows.iter().map(party_row).collect()
    }

    async fn insert_location(&self, l: &Location) -> Result<Inserted<Location>> {
        let done = sqlx::query(
            "insert into locations (code, name) values (?, ?) on conflict (code) do nothing",
        )
        .bind(l.code().as_str())
        .bind(l.name())
        .execute(&mut self.writer().await.conn)
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
        let row = sqlx::query("select * from locations where code = ?")
            .bind(code)
            .fetch_optional(&mut self.writer().await.conn)
            .await
            .map_err(err)?;
        row.as_ref().map(location_row).transpose()
    }
    async fn locations(&self, after: Option<&str>, n: u32) -> Result<Vec<Location>> {
        let rows = sqlx::query("select * from locations where code > ? order by code limit ?")
            .bind(after.unwrap_or(""))
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        rows.iter().map(location_row).collect()
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<Inserted<TokenRecord>> {
        let done = sqlx::query("insert into tokens (name, role, token_hash, created_at, expires_at, revoked_at) values (?, ?, ?, ?, ?, ?) on conflict (name) do nothing")
            .bind(&t.name)
            .bind(&t.role)
            .bind(&t.token_hash)
            .bind(&t.created_at)
            .bind(&t.expires_at)
            .bind(&t.revoked_at)
            .execute(&mut self.writer().await.conn)
            .await
            .map_err(err)?;
        if done.rows_affected() == 1 {
            return Ok(Inserted::Created);
        }
        let row = sqlx::query("select * from tokens where name = ?")
            .bind(&t.name)
            .fetch_one(&mut self.writer().await.conn)
            .await
            .map_err(err)?;
        Ok(Inserted::Existing(token_row(&row)))
    }
    async fn secret(&self, name: &str, fresh: &str, created_at: &str) -> Result<String> {
        sqlx::query("insert into secrets (name, value, created_at) values (?, ?, ?) on conflict (name) do nothing")
            .bind(name)
            .bind(fresh)
            .bind(created_at)
            .execute(&mut self.writer().await.conn)
            .await
            .map_err(err)?;
        let row = sqlx::query("select value from secrets where name = ?")
            .bind(name)
            .fetch_one(&mut self.writer().await.conn)
            .await
            .map_err(err)?;
        row.try_get("value").map_err(err)
    }
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("select * from tokens where token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(err)?;
        Ok(row.as_ref().map(token_row))
    }
    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query("select * from tokens order by name")
            .fetch_all(&self.reader)
            .await
            .map_err(err)?;
        Ok(rows.iter().map(token_row).collect())
    }
    async fn revoke_token(&self, name: &str, at: &str) -> Result<bool> {
        let done =
            sqlx::query("update tokens set revoked_at = ? where name = ? and revoked_at is null")
                .bind(at)
                .bind(name)
                .execute(&mut self.writer().await.conn)
                .await
                .map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn begin(&self) -> Result<Box<dyn WriteTx>> {
        // IMMEDIATE takes the write lock now, so that what we read is what we write on top of.
        let mut w = self.writer().await;
        w.open = true;
        let head = match read_head(&mut w.conn, BEGIN_HEAD).await {
            Ok(head) => head,
            Err(e) => {
                rollback(&mut w).await;
                return Err(e);
            }
        };
        Ok(Box::new(SqliteWriteTx {
            w: Some(w),
            head,
            checkpoint: self.checkpoint.clone(),
        }))
    }

    async fn begin_read(&self) -> Result<Box<dyn store::ReadTx>> {
        // A deferred transaction takes its snapshot at its first read: the head's.
        let mut tx = self.reader.begin().await.map_err(err)?;
        let head = read_head(&mut tx, HEAD).await?;
        Ok(Box::new(write::SqliteReadTx { tx, head }))
    }

    async fn head(&self) -> Result<Head> {
        let mut conn = self.reader.acquire().await.map_err(err)?;
        read_head(&mut conn, HEAD).await
    }

    async fn document(&self, namespace: &str, id: &str) -> Result<Option<DocumentRecord>> {
        let row = sqlx::query("select * from documents where namespace = ? and id = ?")
            .bind(namespace)
            .bind(id)
            .fetch_optional(&self.reader)
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
        let rows =
            sqlx::query("select * from documents where kind = ? and pos > ? order by pos limit ?")
                .bind(kind)
                .bind(after.map_or(0, i64_of))
                .bind(limit(n))
                .fetch_all(&self.reader)
                .await
                .map_err(err)?;
        rows.iter()
            .map(|r| Ok((decode::seq(r.get("pos")), document_row(r)?)))
            .collect()
    }
    async fn idempotency(&self, actor: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        let row = sqlx::query("select * from idempotency where actor = ? and key = ?")
            .bind(actor)
            .bind(key)
            .fetch_optional(&self.reader)
            .await
            .map_err(err)?;
        row.as_ref().map(idempotency_row).transpose()
    }

    async fn entries(&self, after: u64, n: u32) -> Result<Vec<StoredEntry>> {
        let mut conn = self.reader.acquire().await.map_err(err)?;
        entries_between(&mut conn, i64_of(after), limit(n)).await
    }
    async fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        Ok(Box::new(self.journal.snapshot().await?))
    }
    async fn entries_of(&self, seqs: &[u64]) -> Result<Vec<StoredEntry>> {
        let mut seqs: Vec<i64> = seqs.iter().map(|&s| i64_of(s)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut conn = self.reader.acquire().await.map_err(err)?;
        let mut out = Vec::with_capacity(seqs.len());
        // A chunk's entries, then their postings, each by key. Entries and their postings are
        // append-only, so the two statements agree without a transaction.
        for chunk in seqs.chunks(ENTRIES_PER_QUERY) {
            let list = vec!["?"; chunk.len()].join(", ");
            let rows = rows_of_seqs(
                &mut conn,
                &format!("select {ENTRY_COLUMNS} from entries where seq in ({list}) order by seq"),
                chunk,
            )
            .await?;
            let postings = rows_of_seqs(
                &mut conn,
                &format!("select {POSTING_COLUMNS} from postings where seq in ({list}) order by seq, idx"),
                chunk,
            )
            .await?;
            out.extend(decode::entries(
                rows.iter().map(raw_entry).collect::<Result<_>>()?,
                postings.iter().map(raw_posting).collect::<Result<_>>()?,
            )?);
        }
        Ok(out)
    }

    async fn balances(
        &self,
        f: &BalanceFilter,
        after: Option<(String, String)>,
        n: u32,
    ) -> Result<Vec<BalanceRow>> {
        // On rusqlite, as a snapshot reads them (see `journal.rs`).
        self.journal
            .balances(f.clone(), after.unwrap_or_default(), limit(n))
            .await
    }

    async fn trial_balance(&self, as_of: Option<time::Date>) -> Result<Vec<BalanceRow>> {
        // From the postings, not the maintained balances: the report an auditor trusts is the
        // one recomputed from the journal. Entries are read only for a date: the whole journal
        // is one scan of postings, with no lookup of each posting's entry.
        let rows = sqlx::query(
            "select p.account, p.sku, p.lot, cast(sum(p.qty) as bigint) as qty, cast(sum(p.value) as bigint) as value
             from postings p
             where ?1 is null or p.seq in (select seq from entries where date <= ?1)
             group by p.account, p.sku, p.lot
             having sum(p.qty) <> 0 or sum(p.value) <> 0
             order by p.account, p.sku, p.lot",
        )
        .bind(as_of.map(|d| d.to_string()))
        .fetch_all(&self.reader)
        .await
        .map_err(err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let b = decode::balance(r.get("qty"), r.get("value"));
                BalanceRow {
                    account: r.get("account"),
                    sku: r.get("sku"),
                    lot: r.get("lot"),
                    quantity: b.qty,
                    value: b.value,
                }
            })
            .collect())
    }

    async fn conservation_violations(&self) -> Result<Vec<Violation>> {
        // The statements are the store crate's; this backend runs them and reads the columns
        // a finding names, where the statement has them.
        let rows = |sql: &'static str| async move {
            let found = sqlx::query(sql)
                .fetch_all(&self.reader)
                .await
                .map_err(err)?;
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
            .fetch_all(&self.reader)
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
        .fetch_all(&self.reader)
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
        if lots.is_empty() {
            return Ok(Vec::new());
        }
        // One statement with a bound list: PAGE_MAX numbers stay below SQLite's variable limit.
        let mut q = QueryBuilder::<Sqlite>::new("select * from lots where lot in (");
        let mut sep = q.separated(", ");
        for lot in lots.iter().take(PAGE_MAX as usize) {
            sep.push_bind(lot);
        }
        q.push(") order by lot");
        let rows = q.build().fetch_all(&self.reader).await.map_err(err)?;
        rows.iter().map(lot_row).collect()
    }

    async fn insert_baseline(&self, rows: u64, per_commit: usize) -> Result<()> {
        write::insert_baseline(&mut self.writer().await.conn, rows, per_commit).await
    }

    async fn lot_postings(&self, lot: &str) -> Result<Vec<LotPosting>> {
        let rows = sqlx::query(
            "select p.seq, e.date, e.kind, e.document, p.account, p.qty, p.value
             from postings p join entries e on e.seq = p.seq
             where p.lot = ? order by p.seq, p.account, p.idx",
        )
        .bind(lot)
        .fetch_all(&self.reader)
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
        // row with no postings, postings with no balance row). One grouping over both tables:
        // SQLite runs a full outer join against a grouped subquery as a nested loop, which
        // took minutes on a ledger of 50 000 balances. Only integers are summed: a posting
        // holding anything else (written outside the service) then shows as a mismatch of its
        // balance, and its entry as corrupt.
        let rows = sqlx::query(
            "select account, lot, sum(bq) as bq, sum(bv) as bv, sum(pq) as pq, sum(pv) as pv from (
                 select account, lot, qty as bq, value as bv, 0 as pq, 0 as pv from balances
                 union all
                 select account, lot, 0, 0, qty, value from postings
                 where typeof(qty) = 'integer' and typeof(value) = 'integer'
             ) group by account, lot
             having sum(bq) <> sum(pq) or sum(bv) <> sum(pv)
             order by 1, 2",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(|e| match err(e) {
            // Postings written outside the service can sum past 64 bits.
            StoreError::Backend(m) if m.contains("integer overflow") => StoreError::Corrupt(
                format!("balances cannot be recomputed from the postings: {m}"),
            ),
            other => other,
        })?;
        let corrupt =
            |e: sqlx::Error| StoreError::Corrupt(format!("a balance cannot be read: {e}"));
        rows.iter()
            .map(|r| {
                Ok(BalanceMismatch {
                    account: r.try_get("account").map_err(corrupt)?,
                    lot: r.try_get("lot").map_err(corrupt)?,
                    maintained_qty: r.try_get("bq").map_err(corrupt)?,
                    maintained_value: r.try_get("bv").map_err(corrupt)?,
                    posted_qty: r.try_get("pq").map_err(corrupt)?,
                    posted_value: r.try_get("pv").map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn shipment(&self, id: &str) -> Result<Option<Shipment>> {
        let mut conn = self.reader.acquire().await.map_err(err)?;
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
        let mut conn = self.reader.acquire().await.map_err(err)?;
        shipments::select(&mut conn, None, filter, after.map_or(0, i64_of), limit(n)).await
    }
    async fn documents_for(
        &self,
        kind: &str,
        document: &str,
        after: Option<u64>,
        n: u32,
    ) -> Result<Vec<(u64, DocumentRecord)>> {
        let mut conn = self.reader.acquire().await.map_err(err)?;
        shipments::documents_for(&mut conn, kind, document, after, limit(n)).await
    }
    async fn put_bom(&self, bom: &ledger::production::Bom) -> Result<BomPut> {
        production::put_bom(&mut self.writer().await.conn, bom).await
    }
    async fn bom(&self, product_sku: &str, version: &str) -> Result<Option<StoredBom>> {
        production::bom(&self.reader, product_sku, version).await
    }
    async fn boms(&self, after: Option<(String, String)>, n: u32) -> Result<Vec<StoredBom>> {
        production::boms(&self.reader, after, n).await
    }
    async fn production_runs(
        &self,
        filter: &RunFilter,
        after: Option<u64>,
        n: u32,
    ) -> Result<Vec<RunReportRow>> {
        production::runs(&self.reader, filter, after, n).await
    }
}
