//! Whole-journal reads (`verify`, the reconciliation report) and the maintained balances
//! they compare with, on a rusqlite connection of the store's own. Through sqlx every value of every row is copied into an allocation of its own
//! on a worker thread and the row sent to the caller: a profile of the reconciliation report
//! put a third of its CPU there, about 4 us a posting. rusqlite reads each column in place
//! on a blocking thread, straight into the page's buffer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use store::{
    BalanceFilter, BalanceRow, EntryColumns, JournalPage, PostingColumns, Result, StoreError,
};

/// Reads pages of the journal from the database file, one blocking task a page.
#[derive(Debug, Clone)]
pub(crate) struct JournalReader {
    path: PathBuf,
    busy_timeout: Duration,
    /// The connection between two pages (a scan reads a page after another, so one is kept).
    idle: Arc<Mutex<Option<Connection>>>,
    /// The page after the last one served, being read while the caller works through that
    /// one: (after, limit) it was asked for, and the task reading it.
    ahead: Arc<Mutex<Option<Ahead>>>,
}

type Ahead = (i64, i64, tokio::task::JoinHandle<Result<JournalPage>>);

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

impl JournalReader {
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration) -> JournalReader {
        JournalReader {
            path,
            busy_timeout,
            idle: Arc::new(Mutex::new(None)),
            ahead: Arc::new(Mutex::new(None)),
        }
    }

    /// Entries with `seq > after`, at most `limit`, with their postings.
    /// A full page starts the read of the next one, which the next call for it takes: the
    /// pass over the journal then decodes one page while the next is read, on two cores.
    /// Entries are append-only, so a page read a moment early says what it would say later,
    /// save entries appended meanwhile, which the next page's read finds.
    pub(crate) async fn page(&self, after: i64, limit: i64) -> Result<JournalPage> {
        let ahead = self.ahead.lock().ok().and_then(|mut a| a.take());
        let task = match ahead {
            Some((a, l, task)) if (a, l) == (after, limit) => task,
            other => {
                if let Some((_, _, stale)) = other {
                    stale.abort();
                }
                let this = self.clone();
                tokio::task::spawn_blocking(move || this.page_blocking(after, limit))
            }
        };
        let page = task
            .await
            .map_err(|e| StoreError::Backend(format!("journal reader: {e}")))??;
        let full = i64::try_from(page.len()).is_ok_and(|n| n == limit);
        if let (true, Some(last)) = (full, page.last_seq()) {
            let this = self.clone();
            let next = tokio::task::spawn_blocking(move || this.page_blocking(last, limit));
            if let Ok(mut slot) = self.ahead.lock() {
                *slot = Some((last, limit, next));
            }
        }
        Ok(page)
    }

    /// Maintained balances that are not zero, ordered by (account, lot), after the cursor:
    /// `Store::balances`, which `verify` pages through whole (588 000 rows at 1M postings).
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
        .map_err(|e| StoreError::Backend(format!("journal reader: {e}")))?
    }

    fn page_blocking(&self, after: i64, limit: i64) -> Result<JournalPage> {
        self.with_connection(|conn| read(conn, after, limit))
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

/// One page: the entries, then their postings, in one read transaction (one snapshot).
fn read(conn: &Connection, after: i64, limit: i64) -> Result<JournalPage> {
    let tx = conn.unchecked_transaction().map_err(err)?;
    let mut page = JournalPage::with_capacity(usize::try_from(limit).unwrap_or(0));
    {
        let mut st = tx
            .prepare_cached(
                "select seq, date, kind, document, actor, reverses, memo, hash
                 from entries where seq > ?1 order by seq limit ?2",
            )
            .map_err(err)?;
        let mut rows = st.query([after, limit]).map_err(err)?;
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
        let mut st = tx
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
    // A balance edited outside the service (text where a number belongs) cannot be read
    // back: `verify` reports it as a finding.
    let bad = |name: &str, what: String| {
        StoreError::Corrupt(format!("a balance cannot be read: {name} is {what}"))
    };
    while let Some(r) = rows.next().map_err(err)? {
        let text = |i: usize, name: &str| -> Result<String> {
            Ok(text_at(r, i)?.map_err(|what| bad(name, what))?.to_owned())
        };
        let int = |i: usize, name: &str| -> Result<i64> {
            int_at(r, i)?
                .and_then(|n| n.ok_or_else(|| "null".to_owned()))
                .map_err(|what| bad(name, what))
        };
        let b = store::decode::balance(int(3, "qty")?, int(4, "value")?);
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
