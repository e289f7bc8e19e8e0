//! The `Store` trait the service writes and reads through, the records it stores, and its
//! error type.
//!
//! Architecture invariant: this crate names no database driver. Each backend lives in its own
//! crate (`store-sqlite`, `store-postgres`) and is picked at run time by the URL scheme.

pub mod conservation;
pub mod decode;
pub mod journal;
mod json;
pub mod prefetch;
pub mod production;

use async_trait::async_trait;
pub use journal::{
    BalancePage, EntryColumns, JournalPage, PageTask, PostingColumns, Postings, ReadAhead,
    BALANCE_PAGE_MAX, JOURNAL_PAGE_MAX,
};
pub use json::JsonText;
use ledger::{
    Account, Balance, Entry, Hash, Item, Location, Lot, LotNo, Needs, Party, Shipment,
    ShipmentChange, Sku, State,
};
pub use production::{BomPut, ProductionRunRecord, RunFilter, RunReportRow, StoredBom};

/// Largest page any list returns.
pub const PAGE_MAX: u32 = 1_000;
/// Most rows of [`Snapshot::lot_items`] in one page: two short texts a row, a few megabytes.
pub const LOT_ITEMS_PAGE_MAX: u32 = 65_536;

/// A failure of the storage layer. Rejections of bad input are not store errors: the domain
/// refuses those before anything reaches the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database asked us to try again (SQLite busy, PostgreSQL serialization failure or
    /// deadlock). The writer retries these; they never reach a client.
    #[error("database busy, retry: {0}")]
    Busy(String),
    /// A constraint refused a write: the second check of an invariant the domain checks first.
    #[error("constraint refused the write: {0}")]
    Constraint(String),
    /// Stored data that cannot be read back into the domain (edited outside the service).
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// A stored entry that cannot be read back at all; `verify` reports its sequence number.
    #[error("entry {seq} cannot be read: {message}")]
    CorruptEntry { seq: u64, message: String },
    #[error("unsupported database URL: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The head of the ledger: the last entry's sequence number and hash, and the period close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
    pub closed_through: Option<time::Date>,
}

/// An entry as stored: the entry, its chain hash and when it was recorded (RFC 3339, UTC).
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub entry: Entry,
    pub hash: Hash,
    pub recorded_at: String,
}

/// A document as posted: its normalised body (to tell a replay from a conflicting reuse of
/// the id) and the answer first given, which a replay gets again.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRecord {
    /// Ids are unique within a namespace: `purchase`, `shipment` (batches and donations), ...
    pub namespace: String,
    pub id: String,
    pub kind: String,
    pub body_hash: String,
    pub body: JsonText,
    pub response: JsonText,
    pub entry_seq: Option<u64>,
}

/// An `Idempotency-Key` and the answer it was first given.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub actor: String,
    pub key: String,
    pub request_hash: String,
    pub status: u16,
    pub response: JsonText,
}

/// Everything one commit of the writer stores, in one transaction.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub entries: Vec<StoredEntry>,
    pub lots: Vec<Lot>,
    /// Net change per (account, lot) over the batch, with the lot's sku, for keys that may
    /// already have a stored balance: added to it, or stored when there is none.
    pub deltas: Vec<Delta>,
    /// Net change per (account, lot) for keys that can have no stored balance yet (see
    /// `ledger::State::is_new_balance`): inserted with their final value in one statement, where
    /// the others cost more (on SQLite an upsert that reads the stored balance first, on
    /// PostgreSQL a lookup of each key, then an update of those found and an insert of the
    /// rest). Most keys of an import are new (every purchased or produced lot, every
    /// dispatched shipment's transit account). A key wrongly taken as new fails the batch on
    /// the primary key; it is never added twice.
    pub new_balances: Vec<Delta>,
    pub documents: Vec<DocumentRecord>,
    pub idempotency: Vec<IdempotencyRecord>,
    /// The head after the batch; unchanged when the batch holds no entry.
    pub head: Option<Head>,
    /// Reports of the production runs in the batch; each marks its BOM version used.
    pub production_runs: Vec<ProductionRunRecord>,
    /// Shipments dispatched or changed since the batch's previous part, as they now are, with
    /// the lines touched; a shipment changed in two parts is written whole twice.
    pub shipments: Vec<ShipmentChange>,
}

impl WriteBatch {
    /// Asserts that `deltas` are netted, one per (account, lot): a store applies each as one
    /// row of a set-based statement, where a repeated key would be applied once, silently.
    pub fn assert_deltas_netted(&self) {
        let mut keys = std::collections::HashSet::with_capacity(self.deltas.len());
        assert!(
            self.deltas
                .iter()
                .all(|(account, lot, _, _)| keys.insert((account, lot))),
            "balance deltas are netted: one per (account, lot)"
        );
    }
}

/// One netted balance change of a batch: the (account, lot), the lot's item and the change.
pub type Delta = (Account, LotNo, Sku, Balance);

/// Filter of `GET /shipments`; each field narrows when set.
#[derive(Debug, Clone, Default)]
pub struct ShipmentFilter {
    /// `batch` or `donation`.
    pub kind: Option<String>,
    /// `dispatched`, `partly-acknowledged`, `acknowledged` or `closed`.
    pub status: Option<String>,
    /// Shipments with a line to this party.
    pub destination: Option<String>,
}

/// Per shipment and lot, where the outstanding quantity of its lines differs from its
/// `transit:` balance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShipmentMismatch {
    pub shipment: String,
    pub lot: String,
    pub outstanding_qty: i64,
    pub transit_qty: i64,
}

/// One row of `GET /balances` and of the trial balance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BalanceRow {
    pub account: String,
    pub sku: String,
    pub lot: String,
    pub quantity: ledger::Qty,
    pub value: ledger::Money,
}

/// Filter of `GET /balances`; each field narrows when set.
#[derive(Debug, Clone, Default)]
pub struct BalanceFilter {
    pub account: Option<String>,
    pub sku: Option<String>,
    pub lot: Option<String>,
}

/// A master-data insert either creates the record or finds one under the same key.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted<T> {
    Created,
    Existing(T),
}

/// The storage of the ledger. One implementation per backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// The base currency, set once when the database is created.
    async fn base_currency(&self) -> Result<String>;

    async fn insert_item(&self, item: &Item) -> Result<Inserted<Item>>;
    async fn item(&self, sku: &str) -> Result<Option<Item>>;
    async fn items(&self, after: Option<&str>, limit: u32) -> Result<Vec<Item>>;
    async fn insert_party(&self, party: &Party) -> Result<Inserted<Party>>;
    async fn party(&self, code: &str) -> Result<Option<Party>>;
    async fn parties(&self, after: Option<&str>, limit: u32) -> Result<Vec<Party>>;
    async fn insert_location(&self, location: &Location) -> Result<Inserted<Location>>;
    async fn location(&self, code: &str) -> Result<Option<Location>>;
    async fn locations(&self, after: Option<&str>, limit: u32) -> Result<Vec<Location>>;

    /// Stores a new token; `Existing` when the name is taken.
    async fn insert_token(&self, token: &TokenRecord) -> Result<Inserted<TokenRecord>>;
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>>;
    /// All tokens, by name.
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Marks a token revoked at `at`; false when there is no such token or it was revoked.
    async fn revoke_token(&self, name: &str, at: &str) -> Result<bool>;

    /// The secret stored under `name`, storing `fresh` (made at `created_at`) first when there
    /// is none. The first caller decides the value for every process; it never changes after.
    async fn secret(&self, name: &str, fresh: &str, created_at: &str) -> Result<String>;

    /// Starts the single serialised write path: takes the database's write lock and reads the
    /// head. Everything written through the returned transaction commits together or not at all.
    /// The transaction owns its connection rather than borrowing the store, so that the writer
    /// can hand it to a task that writes one part of a batch while the next part is decided.
    async fn begin(&self) -> Result<Box<dyn WriteTx>>;
    /// A read-only transaction at the last commit (see [`ReadTx`]); its snapshot is taken
    /// before this returns, and its head is the head it sees.
    async fn begin_read(&self) -> Result<Box<dyn ReadTx>>;

    async fn head(&self) -> Result<Head>;
    async fn document(&self, namespace: &str, id: &str) -> Result<Option<DocumentRecord>>;
    /// Documents of one kind in the order they were recorded, after the cursor (a position).
    async fn documents(
        &self,
        kind: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, DocumentRecord)>>;
    async fn idempotency(&self, actor: &str, key: &str) -> Result<Option<IdempotencyRecord>>;
    /// Entries with `seq > after`, in order, with their postings.
    async fn entries(&self, after: u64, limit: u32) -> Result<Vec<StoredEntry>>;
    /// The entries of these sequence numbers that exist, once each and in sequence, with their
    /// postings: a trace reads a step's runs in one call rather than one each.
    async fn entries_of(&self, seqs: &[u64]) -> Result<Vec<StoredEntry>>;
    /// One entry with its postings, if it exists.
    async fn entry(&self, seq: u64) -> Result<Option<StoredEntry>> {
        Ok(self.entries_of(&[seq]).await?.pop())
    }
    /// The ledger as it is now, for a pass that reads all of it: see [`Snapshot`].
    async fn snapshot(&self) -> Result<Box<dyn Snapshot>>;
    /// Maintained balances that are not zero, ordered by (account, lot), after the cursor.
    async fn balances(
        &self,
        filter: &BalanceFilter,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<Vec<BalanceRow>>;
    /// Maintained balances that differ from the sum of postings, recomputed by SQL.
    async fn balance_mismatches(&self) -> Result<Vec<BalanceMismatch>>;
    /// The trial balance computed from the postings (not the maintained balances) of entries
    /// dated on or before `as_of` (all entries when `None`); rows that are not zero, ordered by
    /// account, sku and lot.
    async fn trial_balance(&self, as_of: Option<time::Date>) -> Result<Vec<BalanceRow>>;
    /// Invariants 1, 2 and 5 checked over the whole journal by SQL that reads postings only,
    /// plus the maintained balances compared with the recomputed ones.
    async fn conservation_violations(&self) -> Result<Vec<Violation>>;
    /// Postings that name another item than their lot holds (`lot-item`), ordered by entry:
    /// the one conservation check that needs the lots table.
    async fn lot_item_violations(&self) -> Result<Vec<Violation>>;
    /// Stock on hand (`stock:` balances that are not zero) with each lot's expiry.
    async fn stock(&self) -> Result<Vec<StockRow>>;

    /// A shipment with its lines, as it is now.
    async fn shipment(&self, id: &str) -> Result<Option<Shipment>>;
    /// Shipments in dispatch order, after the cursor (a dispatch entry's seq).
    async fn shipments(
        &self,
        filter: &ShipmentFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<Shipment>>;
    /// Documents of one kind whose entries are a shipment's (its dispatch, acknowledgements
    /// and closing, which carry the shipment's id as their document): the acknowledgements of
    /// a shipment, in the order they were recorded. Entries of other kinds are not looked up
    /// by their document id, and no index keeps them by it.
    async fn documents_for(
        &self,
        kind: &str,
        document: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, DocumentRecord)>>;
    /// Stores a bill of materials: creates it, finds it unchanged, or replaces it while no run
    /// has used it. Atomic against the writer, which marks a version used in a run's
    /// transaction: a replacement never slips between a run's reading of a BOM and its commit.
    async fn put_bom(&self, bom: &ledger::production::Bom) -> Result<BomPut>;
    async fn bom(&self, product_sku: &str, version: &str) -> Result<Option<StoredBom>>;
    /// Bills of materials ordered by (product_sku, version), after the cursor.
    async fn boms(&self, after: Option<(String, String)>, limit: u32) -> Result<Vec<StoredBom>>;
    /// Production run reports in the order they were recorded, after the cursor (an entry
    /// sequence number).
    async fn production_runs(
        &self,
        filter: &RunFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RunReportRow>>;
    /// For `ppe bench`, the fastest this database takes posting rows: inserts `rows` rows shaped
    /// like postings (seq, idx, account, sku, lot, qty, value) into a bare scratch table (no
    /// key, index, constraint or trigger), batched as the writer batches postings and
    /// committed durably every `per_commit` rows, then drops the table.
    async fn insert_baseline(&self, rows: u64, per_commit: usize) -> Result<()>;
    /// The lots of the given numbers that exist (at most `PAGE_MAX` numbers per call), in
    /// lot order. Reads only: the writer loads lots through `WriteTx::load`.
    async fn lots(&self, lots: &[String]) -> Result<Vec<Lot>>;
    /// Every posting of one lot, ordered by entry then account, with its entry's date, kind
    /// and document: what a trace walks.
    async fn lot_postings(&self, lot: &str) -> Result<Vec<LotPosting>>;
}

/// One moment of the ledger, for the passes that read all of it (`verify`, the reconciliation
/// report, the stock report): the head, the journal, the maintained balances, lots and
/// shipments as one read transaction sees them. Read piece by piece from the store, a pass
/// would meet entries appended after the head it read, and balances moved by them, and
/// report both as findings. Writers are not held up: the snapshot is a reader's (SQLite WAL,
/// PostgreSQL `repeatable read`). Drop it soon; it ends when dropped.
#[async_trait]
pub trait Snapshot: Send + Sync {
    /// The ledger head, read first: it fixes the moment.
    fn head(&self) -> &Head;
    /// Entries with `seq > after` (at most `limit`, at most [`JOURNAL_PAGE_MAX`]), in order,
    /// with their postings, as stored and not decoded. A column that cannot be read as its
    /// type is a [`StoreError::CorruptEntry`]. Entries past the head are read too: an entry
    /// appended without moving the head is a finding of `verify`.
    async fn journal_page(&self, after: u64, limit: u32) -> Result<JournalPage>;
    /// [`Store::balances`] at this moment.
    async fn balances(
        &self,
        filter: &BalanceFilter,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<Vec<BalanceRow>>;
    /// Every maintained balance that is not zero with `(account, lot) > after`, in byte order
    /// of (account, lot), at most `limit` (at most [`BALANCE_PAGE_MAX`]): [`Self::balances`]
    /// without filters, as stored, for a pass that compares them all. A column that cannot
    /// be read as its type is a [`StoreError::Corrupt`] naming it. A store reads them either
    /// so or in parts ([`Self::balance_parts`]), whichever costs it less, and implements
    /// that one.
    async fn balance_page(
        &self,
        after: Option<(String, String)>,
        limit: u32,
    ) -> Result<BalancePage> {
        let _ = (after, limit);
        Err(StoreError::Backend(
            "balances asked in key order of a store that reads them in parts".into(),
        ))
    }
    /// How many parts [`Self::balance_part`] reads every maintained balance that is not zero
    /// in, where the store reads them far faster in the order it keeps them than in key
    /// order: on PostgreSQL key order is an index scan that fetches each row from the table
    /// (about 0.6 µs a row at 5M balances, against 0.14 µs in table order). `None` where key
    /// order costs no more (SQLite keeps balances in key order); a pass then merges
    /// [`Self::balance_page`]s.
    async fn balance_parts(&self) -> Result<Option<u32>> {
        Ok(None)
    }
    /// Part `part` (below [`Self::balance_parts`]) of the maintained balances that are not
    /// zero, in no particular order: each such balance is in exactly one part.
    async fn balance_part(&self, part: u32) -> Result<BalancePage> {
        Err(StoreError::Backend(format!(
            "balance part {part} asked of a store that reads balances in key order"
        )))
    }
    /// About how many maintained balances there are, zero ones too: a capacity hint for a pass
    /// that keeps one key per balance, never a fact to check against. SQLite counts them (an
    /// index scan, tens of milliseconds at 5M balances); PostgreSQL gives its planner's
    /// estimate, or where that is missing or lower, what the table's size allows for.
    async fn balances_hint(&self) -> Result<u64>;
    /// [`Store::lots`] at this moment.
    async fn lots(&self, lots: &[String]) -> Result<Vec<Lot>>;
    /// Every lot's number and item with `lot > after`, in byte order of the number (at most
    /// `limit`, at most [`LOT_ITEMS_PAGE_MAX`]): the whole table a page at a time, for a pass
    /// that checks every lot posted to against the item it holds.
    async fn lot_items(&self, after: &str, limit: u32) -> Result<Vec<(String, String)>>;
    /// Shipment lines whose outstanding quantity disagrees with the transit balance.
    async fn shipment_mismatches(&self) -> Result<Vec<ShipmentMismatch>>;
}

/// One breach of a conservation check. Amounts are integers at storage scale: quantities
/// at 3 decimals, values at 4 (`is_value` says which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `entry-quantity`, `entry-value`, `negative-balance`, `lot-quantity`, `lot-value`,
    /// `ledger-value`, `lot-item` or `balance`.
    pub check: &'static str,
    pub seq: Option<u64>,
    pub account: Option<String>,
    pub sku: Option<String>,
    pub lot: Option<String>,
    pub is_value: bool,
    pub expected: i64,
    pub found: i64,
}

/// A posting of one lot, with what a trace needs of its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotPosting {
    pub seq: u64,
    pub date: time::Date,
    pub kind: String,
    pub document: String,
    pub account: String,
    pub qty: ledger::Qty,
    pub value: ledger::Money,
}

/// One row of the stock report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRow {
    pub location: String,
    pub sku: String,
    pub lot: String,
    pub quantity: ledger::Qty,
    pub value: ledger::Money,
    pub expires_on: Option<time::Date>,
}

/// A bearer token as stored: never the token itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub token_hash: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A maintained balance that differs from its postings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BalanceMismatch {
    pub account: String,
    pub lot: String,
    pub maintained_qty: i64,
    pub maintained_value: i64,
    pub posted_qty: i64,
    pub posted_value: i64,
}

impl BalanceMismatch {
    /// The mismatch as conservation reports it (`balance`): one violation for the quantity
    /// and one for the value, where each differs.
    pub fn violations(self) -> Vec<Violation> {
        let mut out = Vec::new();
        if self.maintained_qty != self.posted_qty {
            out.push(Violation {
                check: "balance",
                seq: None,
                account: Some(self.account.clone()),
                sku: None,
                lot: Some(self.lot.clone()),
                is_value: false,
                expected: self.posted_qty,
                found: self.maintained_qty,
            });
        }
        if self.maintained_value != self.posted_value {
            out.push(Violation {
                check: "balance",
                seq: None,
                account: Some(self.account),
                sku: None,
                lot: Some(self.lot),
                is_value: true,
                expected: self.posted_value,
                found: self.maintained_value,
            });
        }
        out
    }
}

/// What the writer reads to decide a batch, in one transaction: a write transaction's own
/// reads, or a [`ReadTx`]'s.
#[async_trait]
pub trait BatchReads: Send {
    /// The head as of the start of this transaction.
    fn head(&self) -> &Head;
    /// Loads into `state` what `needs` names and it does not hold yet: a prefetch of no
    /// documents and no keys.
    async fn load(&mut self, needs: &Needs, state: &mut State) -> Result<()> {
        self.prefetch(&[], &[], needs, state).await?;
        Ok(())
    }
    /// What a batch reads before it decides anything, in one call: the documents recorded
    /// under any of the (namespace, id) pairs `ids`, the idempotency records of any of the
    /// (actor, key) pairs `keys`, and `needs` loaded into `state`. A store sends them in as few
    /// round trips as it can (one on both backends).
    async fn prefetch(
        &mut self,
        ids: &[(&str, &str)],
        keys: &[(&str, &str)],
        needs: &Needs,
        state: &mut State,
    ) -> Result<(Vec<DocumentRecord>, Vec<IdempotencyRecord>)>;
}

/// A read-only transaction that sees the ledger as one commit left it, for the writer to
/// decide a batch while the batch before it commits (see `service::writer`). It takes no
/// lock: what it reads may be overtaken, and the writer checks the head before it writes.
/// Rolled back when dropped; [`ReadTx::end`] rolls it back at once.
#[async_trait]
pub trait ReadTx: BatchReads {
    /// Ends the transaction (it wrote nothing), so that its snapshot holds nothing back: on
    /// SQLite the checkpoints, on PostgreSQL the vacuum's horizon.
    async fn end(self: Box<Self>) -> Result<()>;
}

/// The write transaction: the only way entries reach the database.
#[async_trait]
pub trait WriteTx: BatchReads {
    /// Writes a batch: entries, postings, lots, documents, idempotency records, balance
    /// deltas and the new head.
    async fn write(&mut self, batch: &WriteBatch) -> Result<()>;
    async fn commit(self: Box<Self>) -> Result<()>;
}
