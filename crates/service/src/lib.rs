//! The service: turns documents into entries through one serialised writer, serves master
//! data, the journal, balances and `verify`, and imports CSV. Generic over the `Store`.
//!
//! Architecture invariant: the service knows neither HTTP nor SQL. It speaks in DTOs, domain
//! types and `ServiceError`; the API maps those to HTTP and the store crates to SQL.

pub mod auth;
pub mod bom;
pub mod dto;
pub mod dto_production;
mod dto_shipments;
pub mod error;
pub mod export;
pub mod import;
pub mod master;
mod parse;
mod period;
pub mod production;
mod purchase;
mod receipt;
pub mod reports;
mod reversal;
mod scan;
pub mod secrets;
pub mod shipment;
mod stock;
mod stock_count;
pub mod trace;
mod verify;
pub mod views;
mod writer;

use std::sync::Arc;

use ledger::Rejection;
use store::{BalanceFilter, Store, StoreError, PAGE_MAX};
use tokio::sync::{mpsc, oneshot};

pub use error::{FieldError, Result, ServiceError};
pub use purchase::money;
pub use store::JsonText;
pub use writer::{Outcome, WriterConfig};

use dto::{BalanceView, EntryView, Page, PurchaseIn, ReversalIn, VerifyReport};
use writer::{Document, Job};

/// Page size when the client names none.
pub const PAGE_DEFAULT: u32 = 100;

/// The page size to use: the client's, capped, or the default.
pub fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX)
}

/// Gives the current time (UTC). Passed in, so that tests can move it.
pub type Clock = Arc<dyn Fn() -> time::OffsetDateTime + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(time::OffsetDateTime::now_utc)
}

/// Opens the store a database URL names: `sqlite:` (the embedded default) or `postgres:`.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(store_sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(store_postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(format!(
            "{url}: the scheme must be sqlite: or postgres:"
        )))
    }
}

/// The ledger service. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    writer: mpsc::Sender<Job>,
    /// Batches the writer decided while the batch before them committed.
    decided_ahead: Arc<std::sync::atomic::AtomicU64>,
    writer_config: WriterConfig,
    base_currency: String,
    clock: Clock,
    tokens: auth::TokenCache,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("backend", &self.inner.store.backend())
            .field("base_currency", &self.inner.base_currency)
            .finish()
    }
}

impl Service {
    /// Opens the database at `url` (migrating it) and starts the writer.
    pub async fn open(url: &str, config: WriterConfig) -> Result<Service> {
        let store = open_store(url).await?;
        Service::start(store, config, system_clock()).await
    }

    /// Starts a service over an opened store.
    pub async fn start(
        store: Arc<dyn Store>,
        config: WriterConfig,
        clock: Clock,
    ) -> Result<Service> {
        let base_currency = store.base_currency().await?;
        let (writer, decided_ahead) =
            writer::spawn(store.clone(), base_currency.clone(), config, clock.clone());
        Ok(Service {
            inner: Arc::new(Inner {
                store,
                writer,
                decided_ahead,
                writer_config: config,
                base_currency,
                clock,
                tokens: auth::TokenCache::default(),
            }),
        })
    }

    fn token_cache(&self) -> &auth::TokenCache {
        &self.inner.tokens
    }

    /// Batches the writer decided while the batch before them committed, and wrote in their
    /// turn (see `ppe bench`): how often a load keeps the queue full enough for that.
    pub fn batches_decided_ahead(&self) -> u64 {
        self.inner
            .decided_ahead
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The bounds of group commit this service's writer runs with.
    pub fn writer_config(&self) -> WriterConfig {
        self.inner.writer_config
    }

    pub fn store(&self) -> &dyn Store {
        &*self.inner.store
    }
    /// The current time, from the service's clock.
    pub fn now(&self) -> time::OffsetDateTime {
        (self.inner.clock)()
    }
    pub fn backend(&self) -> &'static str {
        self.inner.store.backend()
    }
    pub fn base_currency(&self) -> &str {
        &self.inner.base_currency
    }

    /// Hands a document to the writer and waits until it is committed (or refused).
    async fn submit(
        &self,
        doc: Box<dyn Document>,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let rx = self.enqueue(doc, actor, idempotency_key, false).await?;
        rx.await.map_err(|_| ServiceError::WriterGone)?
    }

    /// Queues a document without waiting for its commit, so that many can share one. `bulk`
    /// (an import) lets it share a bigger batch.
    async fn enqueue(
        &self,
        doc: Box<dyn Document>,
        actor: &str,
        idempotency_key: Option<&str>,
        bulk: bool,
    ) -> Result<oneshot::Receiver<Result<Outcome>>> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            doc,
            actor: actor.to_owned(),
            idempotency_key: idempotency_key.map(str::to_owned),
            bulk,
            reply,
        };
        self.inner
            .writer
            .send(job)
            .await
            .map_err(|_| ServiceError::WriterGone)?;
        Ok(rx)
    }

    /// Records a purchase.
    pub async fn record_purchase(
        &self,
        input: &PurchaseIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = purchase::parse(input, self.base_currency())?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// Reverses entry `seq`.
    pub async fn reverse(
        &self,
        seq: u64,
        input: &ReversalIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = reversal::parse(seq, input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// Closes the ledger through a date.
    pub async fn close_period(
        &self,
        input: &dto::PeriodCloseIn,
        actor: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Outcome> {
        let doc = period::parse(input)?;
        self.submit(Box::new(doc), actor, idempotency_key).await
    }

    /// A recorded document, as answered when it was posted: the same text.
    pub async fn document(
        &self,
        namespace: &str,
        kind: &'static str,
        id: &str,
    ) -> Result<JsonText> {
        match self.store().document(namespace, id).await? {
            Some(d) if d.kind == kind => Ok(d.response),
            _ => Err(Rejection::NotFound {
                what: kind,
                id: id.to_owned(),
            }
            .into()),
        }
    }

    /// Recorded documents of one kind, oldest first.
    pub async fn documents(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<JsonText>> {
        let limit = page_limit(limit);
        let after = parse_cursor(after)?;
        let rows = self.store().documents(kind, after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|(pos, _)| pos.to_string()))
            .flatten();
        Ok(Page {
            items: rows.into_iter().map(|(_, d)| d.response).collect(),
            next,
        })
    }

    /// The journal, oldest first.
    pub async fn entries(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<EntryView>> {
        let limit = page_limit(limit);
        let after = parse_cursor(after)?.unwrap_or(0);
        let rows = self.store().entries(after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|e| e.entry.seq().to_string()))
            .flatten();
        Ok(Page {
            items: rows
                .iter()
                .map(|e| views::entry_view(&e.entry, &e.hash, &e.recorded_at))
                .collect(),
            next,
        })
    }

    pub async fn entry(&self, seq: u64) -> Result<EntryView> {
        match self.store().entry(seq).await? {
            Some(e) => Ok(views::entry_view(&e.entry, &e.hash, &e.recorded_at)),
            None => Err(Rejection::NotFound {
                what: "entry",
                id: seq.to_string(),
            }
            .into()),
        }
    }

    /// The entries of these sequence numbers, once each and in sequence, read in one call
    /// (a shipment's page shows its dispatch, acknowledgements and closing); a number with no
    /// entry is `NotFound`.
    pub async fn entries_of(&self, seqs: &[u64]) -> Result<Vec<EntryView>> {
        let found = self.store().entries_of(seqs).await?;
        if let Some(missing) = seqs
            .iter()
            .find(|&&seq| found.binary_search_by_key(&seq, |e| e.entry.seq()).is_err())
        {
            return Err(Rejection::NotFound {
                what: "entry",
                id: missing.to_string(),
            }
            .into());
        }
        Ok(found
            .iter()
            .map(|e| views::entry_view(&e.entry, &e.hash, &e.recorded_at))
            .collect())
    }

    /// Maintained balances that are not zero, filtered.
    pub async fn balances(
        &self,
        filter: &BalanceFilter,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<BalanceView>> {
        let limit = page_limit(limit);
        let after = match after {
            None => None,
            Some(c) => match c.split_once('|') {
                Some((a, l)) => Some((a.to_owned(), l.to_owned())),
                None => {
                    return Err(ServiceError::field(
                        "after",
                        "is not a cursor this list gave",
                    ))
                }
            },
        };
        let rows = self.store().balances(filter, after, limit).await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(|b| format!("{}|{}", b.account, b.lot)))
            .flatten();
        Ok(Page {
            items: rows.iter().map(views::balance_view).collect(),
            next,
        })
    }

    /// Checks the chain, the head and the balances.
    pub async fn verify(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<VerifyReport> {
        verify::run(self.store(), progress).await
    }
}

fn parse_cursor(after: Option<&str>) -> Result<Option<u64>> {
    after
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| ServiceError::field("after", "is not a cursor this list gave"))
        })
        .transpose()
}
