//! Whole-ledger reads (`verify`, the reconciliation and stock reports) in one snapshot, and
//! the maintained balances, on rusqlite connections of the store's own. Through sqlx every value of every row is copied into an allocation of its own
//! on a worker thread and the row sent to the caller: a profile of the reconciliation report
//! put a third of its CPU there, about 4 us a posting. rusqlite reads each column in place
//! on a blocking thread, straight into the page's buffer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ledger::{Hash, Lot};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use store::{
    BalanceFilter, BalancePage, BalanceRow, EntryColumns, Head, JournalPage, PostingColumns,
    ReadAhead, Result, ShipmentMismatch, Snapshot, StoreError, BALANCE_PAGE_MAX, JOURNAL_PAGE_MAX,
    LOT_ITEMS_PAGE_MAX, PAGE_MAX,
};

/// Reads the maintained balances page by page for `Store::balances`, and opens snapshots.
#[derive(Debug, Clone)]
pub(crate) struct JournalReader {
    path: PathBuf,
    busy_timeout: Duration,
    /// The connection between two pages (a client pages through balances, so one is kept).
    idle: Arc<Mutex<Option<Connection>>>,
}

/// One read transaction on a connection of its own, open from the head's read to the drop:
/// `verify`, the reconciliation report and the stock report read the ledger at one moment.
/// WAL readers do not block the writer, and the writer does not move what they see.
#[derive(Debug)]
pub(crate) struct SqliteSnapshot {
    head: Head,
    /// Used by one read at a time: the caller's, or the page being read ahead.
    conn: Arc<Mutex<Connection>>,
    /// The second lane of a full pass's reads: a connection of its own, opened by its first
    /// page, whose read transaction begins after this one's. It reads only entries up to the
    /// head, which are append-only, so it reads them as this snapshot would; a page it finds
    /// short is read again on the snapshot's connection.
    lane: Arc<Mutex<Option<Connection>>>,
    reader: JournalReader,
    /// The pages after the one the caller checks, read on both lanes meanwhile.
    ahead: ReadAhead,
}

/// Connections a full pass reads the journal on: at 1.09M postings one connection's thread
/// was the bound of the pass (busy nine tenths of the time, while the pass's own thread was
/// busy half).
const JOURNAL_LANES: usize = 2;

fn err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Busy(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

fn corrupt(seq: i64, column: &str, what: &str) -> StoreError {
    StoreError::CorruptEntry {
        seq: store::decode::seq(seq.max(1)),
        message: format!("column {column}: {what}"),
    }
}

fn kind(v: &ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "an integer",
        ValueRef::Real(_) => "a real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "a blob",
    }
}

/// A text column, read in place, or what it holds instead, in words (a blob, a number, text
/// that is not UTF-8). The outer error is the driver's.
fn text_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Result<&'r str, String>> {
    Ok(match r.get_ref(i).map_err(err)? {
        ValueRef::Text(b) => std::str::from_utf8(b).map_err(|e| format!("not UTF-8: {e}")),
        v => Err(format!("{} where text belongs", kind(&v))),
    })
}

/// An integer column (None for null), or what it holds instead, in words.
fn int_at(r: &rusqlite::Row<'_>, i: usize) -> Result<Result<Option<i64>, String>> {
    Ok(match r.get_ref(i).map_err(err)? {
        ValueRef::Integer(n) => Ok(Some(n)),
        ValueRef::Null => Ok(None),
        v => Err(format!("{} where an integer belongs", kind(&v))),
    })
}

/// A text column of entry `seq`; anything else is a corrupt entry, as it is through sqlx.
fn text<'r>(r: &'r rusqlite::Row<'_>, seq: i64, i: usize, column: &str) -> Result<&'r str> {
    text_at(r, i)?.map_err(|what| corrupt(seq, column, &what))
}

/// An integer column of entry `seq`; null only where the column allows it.
fn int(r: &rusqlite::Row<'_>, seq: i64, i: usize, column: &str) -> Result<Option<i64>> {
    int_at(r, i)?.map_err(|what| corrupt(seq, column, &what))
}

fn required(v: Option<i64>, seq: i64, column: &str) -> Result<i64> {
    v.ok_or_else(|| corrupt(seq, column, "null where an integer belongs"))
}

/// The `seq` of a journal row (column 0): without it the row belongs to no entry.
fn row_seq(r: &rusqlite::Row<'_>) -> Result<i64> {
    match int_at(r, 0)? {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(StoreError::Corrupt(
            "a row's seq cannot be read: null".into(),
        )),
        Err(what) => Err(StoreError::Corrupt(format!(
            "a row's seq cannot be read: {what}"
        ))),
    }
}

fn gone(e: tokio::task::JoinError) -> StoreError {
    StoreError::Backend(format!("journal reader: {e}"))
}

impl JournalReader {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration) -> JournalReader {
        JournalReader {
            path,
            busy_timeout,
            idle: Arc::new(Mutex::new(None)),
        }
    }

    /// Maintained balances that are not zero, ordered by (account, lot), after the cursor:
    /// `Store::balances`. One statement, so one moment, a page.
    pub(crate) async fn balances(
        &self,
        filter: BalanceFilter,
        after: (String, String),
        limit: i64,
    ) -> Result<Vec<BalanceRow>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.with_connection(|conn| read_balances(conn, &filter, &after, limit))
        })
        .await
        .map_err(gone)?
    }

    /// A new read transaction, its moment fixed by reading the head.
    pub(crate) async fn snapshot(&self) -> Result<SqliteSnapshot> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = this.open()?;
            // `begin` takes no snapshot yet: the first read does, and the transaction keeps
            // it until the connection closes with the snapshot's drop.
            conn.execute_batch("begin").map_err(err)?;
            let head = read_head(&conn)?;
            Ok(SqliteSnapshot {
                head,
                conn: Arc::new(Mutex::new(conn)),
                lane: Arc::new(Mutex::new(None)),
                reader: this.clone(),
                ahead: ReadAhead::new(JOURNAL_LANES),
            })
        })
        .await
        .map_err(gone)?
    }

    /// Runs `f` on the idle connection (or a new one) and keeps the connection for the next.
    fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().map(|mut c| c.take()).unwrap_or(None);
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        if let Ok(mut slot) = self.idle.lock() {
            *slot = Some(conn);
        }
        out
    }

    fn open(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(self.busy_timeout).map_err(err)?;
        Ok(conn)
    }
}

impl SqliteSnapshot {
    /// Runs `f` on the snapshot's connection, on a blocking thread; waits for a page being
    /// read ahead to finish first.
    async fn with_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&*lock(&conn)?))
            .await
            .map_err(gone)?
    }
}

fn lock<T>(conn: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    conn.lock()
        .map_err(|_| StoreError::Backend("journal reader: a read of the snapshot panicked".into()))
}

#[async_trait]
impl Snapshot for SqliteSnapshot {
    fn head(&self) -> &Head {
        &self.head
    }

    async fn journal_page(&self, after: u64, n: u32) -> Result<JournalPage> {
        let (after, limit) = (
            crate::i64_of(after),
            i64::from(n.clamp(1, JOURNAL_PAGE_MAX)),
        );
        let head = crate::i64_of(self.head.seq);
        self.ahead
            .page(after, limit, |after, limit, lane| {
                let conn = self.conn.clone();
                if lane == 0 {
                    return tokio::task::spawn_blocking(move || {
                        read(&*lock(&conn)?, after, limit, i64::MAX)
                    });
                }
                let (slot, reader) = (self.lane.clone(), self.reader.clone());
                tokio::task::spawn_blocking(move || {
                    let page = {
                        let mut slot = lock(&slot)?;
                        if slot.is_none() {
                            let c = reader.open()?;
                            c.execute_batch("begin").map_err(err)?;
                            *slot = Some(c);
                        }
                        read(slot.as_ref().expect("opened above"), after, limit, head)?
                    };
                    // A full page lies wholly under the head. A short one may have been cut
                    // there, and entries past the head in the snapshot itself (appended
                    // without moving it) are a finding: the snapshot's own connection reads
                    // that page again.
                    if i64::try_from(page.len()).is_ok_and(|n| n == limit) {
                        Ok(page)
                    } else {
                        read(&*lock(&conn)?, after, limit, i64::MAX)
                    }
                })
            })
            .await
    }

    async fn balances(
        &self,
        filter: &BalanceFilter,
        after: Option<(String, String)>,
        n: u32,
    ) -> Result<Vec<BalanceRow>> {
        let (filter, after) = (filter.clone(), after.unwrap_or_default());
        let limit = i64::from(n.clamp(1, PAGE_MAX));
        self.with_connection(move |conn| read_balances(conn, &filter, &after, limit))
            .await
    }

    async fn lots(&self, lots: &[String]) -> Result<Vec<Lot>> {
        if lots.is_empty() {
            return Ok(Vec::new());
        }
        let lots: Vec<String> = lots.iter().take(PAGE_MAX as usize).cloned().collect();
        self.with_connection(move |conn| read_lots(conn, &lots))
            .await
    }

    async fn balance_page(&self, after: Option<(String, String)>, n: u32) -> Result<BalancePage> {
        let (after, limit) = (
            after.unwrap_or_default(),
            i64::from(n.clamp(1, BALANCE_PAGE_MAX)),
        );
        self.with_connection(move |conn| read_balance_page(conn, &after, limit))
            .await
    }

    async fn balances_hint(&self) -> Result<u64> {
        self.with_connection(|conn| {
            let n: i64 = conn
                .query_row("select count(*) from balances", [], |r| r.get(0))
                .map_err(err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn lot_items(&self, after: &str, n: u32) -> Result<Vec<(String, String)>> {
        let (after, limit) = (after.to_owned(), i64::from(n.clamp(1, LOT_ITEMS_PAGE_MAX)));
        self.with_connection(move |conn| read_lot_items(conn, &after, limit))
            .await
    }

    async fn shipment_mismatches(&self) -> Result<Vec<ShipmentMismatch>> {
        self.with_connection(read_shipment_mismatches).await
    }
}

/// A page of the balances that are not zero, as stored, in (account, lot) order.
fn read_balance_page(
    conn: &Connection,
    (after_account, after_lot): &(String, String),
    limit: i64,
) -> Result<BalancePage> {
    let mut st = conn
        .prepare_cached(
            "select account, lot, qty, value from balances
             where (qty <> 0 or value <> 0) and (account, lot) > (?1, ?2)
             order by account, lot limit ?3",
        )
        .map_err(err)?;
    let mut rows = st
        .query(rusqlite::params![after_account, after_lot, limit])
        .map_err(err)?;
    let mut page = BalancePage::with_capacity(usize::try_from(limit).unwrap_or(0).min(4_096));
    while let Some(r) = rows.next().map_err(err)? {
        page.push(
            balance_text(r, 0, "account")?,
            balance_text(r, 1, "lot")?,
            balance_int(r, 2, "qty")?,
            balance_int(r, 3, "value")?,
        );
    }
    Ok(page)
}

/// A page of (lot, item) in lot order: a walk of the lot number's index from `after`.
fn read_lot_items(conn: &Connection, after: &str, limit: i64) -> Result<Vec<(String, String)>> {
    let mut st = conn
        .prepare_cached("select lot, sku from lots where lot > ?1 order by lot limit ?2")
        .map_err(err)?;
    let mut rows = st.query(rusqlite::params![after, limit]).map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        out.push((
            r.get::<_, String>(0).map_err(err)?,
            r.get::<_, String>(1).map_err(err)?,
        ));
    }
    Ok(out)
}

/// The ledger head. Read first in a snapshot's transaction, it fixes the snapshot's moment.
fn read_head(conn: &Connection) -> Result<Head> {
    let mut st = conn
        .prepare("select seq, hash, closed_through from ledger where id = 1")
        .map_err(err)?;
    let (seq, hash, closed_through) = st
        .query_row([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(err)?;
    Ok(Head {
        seq: store::decode::seq(seq),
        hash: Hash::from_hex(&hash)
            .ok_or_else(|| StoreError::Corrupt("ledger head hash".into()))?,
        closed_through: store::decode::opt_date(closed_through)?,
    })
}

/// Lots by number, in lot order. One statement with a bound list: PAGE_MAX numbers stay
/// below SQLite's variable limit.
fn read_lots(conn: &Connection, lots: &[String]) -> Result<Vec<Lot>> {
    let marks = vec!["?"; lots.len()].join(", ");
    // Cached: the stock report asks for a page of balances' lots at a time, mostly a full page
    // (the same text every time), and a statement of a thousand parameters is not cheap to
    // prepare.
    let mut st = conn
        .prepare_cached(&format!(
            "select lot, sku, origin_kind, origin_doc, origin_seq, expires_on, source
             from lots where lot in ({marks}) order by lot"
        ))
        .map_err(err)?;
    let mut rows = st
        .query(rusqlite::params_from_iter(lots.iter()))
        .map_err(err)?;
    let mut out = Vec::with_capacity(lots.len());
    while let Some(r) = rows.next().map_err(err)? {
        let text = |i: usize| r.get::<_, String>(i).map_err(err);
        let opt = |i: usize| r.get::<_, Option<String>>(i).map_err(err);
        out.push(store::decode::lot(
            &text(0)?,
            &text(1)?,
            &text(2)?,
            &text(3)?,
            r.get::<_, i64>(4).map_err(err)?,
            opt(5)?,
            opt(6)?,
        )?);
    }
    Ok(out)
}

fn read_shipment_mismatches(conn: &Connection) -> Result<Vec<ShipmentMismatch>> {
    let mut st = conn
        .prepare_cached(crate::shipments::MISMATCHES_SQL)
        .map_err(err)?;
    let rows = st
        .query_map([], |r| {
            Ok(ShipmentMismatch {
                shipment: r.get(0)?,
                lot: r.get(1)?,
                outstanding_qty: r.get(2)?,
                transit_qty: r.get(3)?,
            })
        })
        .map_err(err)?;
    rows.collect::<std::result::Result<_, _>>().map_err(err)
}

/// One page: at most `limit` entries after `after` and up to `through`, then their postings,
/// in the read transaction of the connection given.
fn read(conn: &Connection, after: i64, limit: i64, through: i64) -> Result<JournalPage> {
    assert!(!conn.is_autocommit(), "a page is read inside a snapshot");
    let mut page = JournalPage::with_capacity(usize::try_from(limit).unwrap_or(0));
    {
        let mut st = conn
            .prepare_cached(
                "select seq, date, kind, document, actor, reverses, memo, hash
                 from entries where seq > ?1 and seq <= ?3 order by seq limit ?2",
            )
            .map_err(err)?;
        let mut rows = st.query([after, limit, through]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let seq = row_seq(r)?;
            page.push_entry(EntryColumns {
                seq,
                date: text(r, seq, 1, "date")?,
                kind: text(r, seq, 2, "kind")?,
                document: text(r, seq, 3, "document")?,
                actor: text(r, seq, 4, "actor")?,
                reverses: int(r, seq, 5, "reverses")?,
                memo: text(r, seq, 6, "memo")?,
                hash: text(r, seq, 7, "hash")?,
            });
        }
    }
    let Some(last) = page.last_seq() else {
        return Ok(page);
    };
    {
        let mut st = conn
            .prepare_cached(
                "select seq, account, sku, lot, qty, value
                 from postings where seq > ?1 and seq <= ?2 order by seq, idx",
            )
            .map_err(err)?;
        let mut rows = st.query([after, last]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            let seq = row_seq(r)?;
            page.push_posting(
                seq,
                PostingColumns {
                    account: text(r, seq, 1, "account")?,
                    sku: text(r, seq, 2, "sku")?,
                    lot: text(r, seq, 3, "lot")?,
                    qty: required(int(r, seq, 4, "qty")?, seq, "qty")?,
                    value: required(int(r, seq, 5, "value")?, seq, "value")?,
                },
            );
        }
    }
    Ok(page)
}

/// One page of maintained balances. Each filter is optional: `? is null or column = ?` keeps
/// one statement for all cases.
fn read_balances(
    conn: &Connection,
    f: &BalanceFilter,
    (after_account, after_lot): &(String, String),
    limit: i64,
) -> Result<Vec<BalanceRow>> {
    let mut st = conn
        .prepare_cached(
            "select account, sku, lot, qty, value from balances
             where (qty <> 0 or value <> 0)
               and (?1 is null or account = ?1) and (?2 is null or sku = ?2) and (?3 is null or lot = ?3)
               and (account, lot) > (?4, ?5)
             order by account, lot limit ?6",
        )
        .map_err(err)?;
    let mut rows = st
        .query(rusqlite::params![
            f.account,
            f.sku,
            f.lot,
            after_account,
            after_lot,
            limit
        ])
        .map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        let text = |i: usize, name: &str| balance_text(r, i, name).map(str::to_owned);
        let b = store::decode::balance(balance_int(r, 3, "qty")?, balance_int(r, 4, "value")?);
        out.push(BalanceRow {
            account: text(0, "account")?,
            sku: text(1, "sku")?,
            lot: text(2, "lot")?,
            quantity: b.qty,
            value: b.value,
        });
    }
    Ok(out)
}

/// A balance edited outside the service (text where a number belongs) cannot be read back:
/// `verify` reports it as a finding, with the column and what it holds.
fn unreadable_balance(name: &str, what: String) -> StoreError {
    StoreError::Corrupt(format!("a balance cannot be read: {name} is {what}"))
}

/// A balance's text column.
fn balance_text<'r>(r: &'r rusqlite::Row<'_>, i: usize, name: &str) -> Result<&'r str> {
    text_at(r, i)?.map_err(|what| unreadable_balance(name, what))
}

/// A balance's integer column; null is as unreadable as text.
fn balance_int(r: &rusqlite::Row<'_>, i: usize, name: &str) -> Result<i64> {
    int_at(r, i)?
        .and_then(|n| n.ok_or_else(|| "null".to_owned()))
        .map_err(|what| unreadable_balance(name, what))
}
