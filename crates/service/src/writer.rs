//! The single write path: one task per service takes documents from a queue and commits them
//! in batches (group commit). Each document is decided on its own against the state the
//! earlier documents of the batch left, so one bad document never fails its neighbours; the
//! whole batch then commits in one transaction, and only then is anyone answered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ledger::docs::Decision;
use ledger::shipment::ShipmentMove;
use ledger::{Entry, Hash, Needs, Rejection, Shipment, ShipmentChange, State};
use serde_json::Value;
use store::{
    DocumentRecord, IdempotencyRecord, Store, StoreError, StoredEntry, WriteBatch, WriteTx,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ServiceError;
use crate::Clock;

/// Bounds of group commit.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most documents committed together.
    pub max_batch: usize,
    /// Most documents committed together when the batch starts with an imported document:
    /// an import keeps the queue full, and a bigger commit spreads its fixed costs (the
    /// durable sync, the loads and statements per batch) over more documents. Since batches
    /// are written behind the writer in parts, 1 024 imports as fast as 2 048 did (a little
    /// faster, in alternating runs) and holds half as many documents in memory.
    pub import_batch_max: usize,
    /// Most document lines in one batch, whatever the documents: bounds the memory and the
    /// size of one commit (a document may carry up to 1 000 lines).
    pub max_batch_lines: usize,
    /// How long the writer waits for more documents once it has one (0: take only what is
    /// already queued, which adds no latency and still batches under load).
    pub max_wait: Duration,
    /// Documents that may wait in the queue before callers wait to enqueue.
    pub queue_depth: usize,
    /// Attempts at a batch the database asked us to retry (busy, serialization failure).
    pub retries: u32,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 256,
            import_batch_max: 1_024,
            max_batch_lines: 32_768,
            max_wait: Duration::ZERO,
            queue_depth: 4_096,
            retries: 8,
        }
    }
}

/// The answer to a write: the status, the body, and whether it replays an earlier answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

/// A document the writer can post. Each kind of document implements it.
pub(crate) trait Document: Send + Sync + 'static {
    /// The kind recorded with the document (`purchase`).
    fn kind(&self) -> &'static str;
    /// Namespace and id for id-based idempotency, when the client names the document.
    fn id(&self) -> Option<(&'static str, &str)>;
    /// The normalised body; its hash tells a replay from a conflicting reuse.
    fn body(&self) -> &Value;
    /// What the decision needs loaded.
    fn needs(&self) -> Needs;
    /// What it needs once the first needs are loaded (a reversal needs the entry first).
    fn needs_then(&self, _state: &State) -> Needs {
        Needs::default()
    }
    fn decide(&self, state: &State, base_currency: &str) -> Result<Decision, Rejection>;
    /// The answer for a committed document.
    fn respond(&self, entry: &Entry, hash: &Hash, recorded_at: &str, decision: &Decision) -> Value;
    /// Decides the document together with what it changes in a shipment (a dispatch, an
    /// acknowledgement, a closing). Documents that move only balances keep this default.
    fn decide_with_shipment(
        &self,
        state: &State,
        base_currency: &str,
    ) -> Result<(Decision, Option<ShipmentChange>), Rejection> {
        Ok((self.decide(state, base_currency)?, None))
    }
    /// The answer for a committed document that changed a shipment: what it moved, and the
    /// shipment as it now is. Only documents that return a change are answered this way.
    fn respond_with_shipment(
        &self,
        entry: &Entry,
        hash: &Hash,
        recorded_at: &str,
        decision: &Decision,
        _moves: &[ShipmentMove],
        _shipment: &Shipment,
    ) -> Value {
        self.respond(entry, hash, recorded_at, decision)
    }
    /// The answer for a committed document given the state its decision read, with anything it
    /// keeps beyond its entry added to the batch (a production run's report, whose standard
    /// quantities come from its BOM). By default, `respond`'s answer and nothing more.
    fn finish(
        &self,
        _state: &State,
        entry: &Entry,
        hash: &Hash,
        recorded_at: &str,
        decision: &Decision,
        _batch: &mut WriteBatch,
    ) -> Value {
        self.respond(entry, hash, recorded_at, decision)
    }
}

pub(crate) struct Job {
    pub doc: Box<dyn Document>,
    pub actor: String,
    pub idempotency_key: Option<String>,
    /// Sent by an import, which may share a bigger batch (`WriterConfig::import_batch_max`).
    pub bulk: bool,
    pub reply: oneshot::Sender<Result<Outcome, ServiceError>>,
}

impl Job {
    /// The lines of the document, which bound a batch's size beside the count of documents.
    fn lines(&self) -> usize {
        self.doc
            .body()
            .get("lines")
            .and_then(Value::as_array)
            .map_or(1, |l| l.len().max(1))
    }
}

/// The hash of a normalised request body, with the kind of request it is.
pub(crate) fn body_hash(kind: &str, body: &Value) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(body.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Starts the writer task and returns its queue.
pub(crate) fn spawn(
    store: Arc<dyn Store>,
    base_currency: String,
    config: WriterConfig,
    clock: Clock,
) -> mpsc::Sender<Job> {
    assert!(config.max_batch >= 1 && config.queue_depth >= 1);
    let (tx, rx) = mpsc::channel(config.queue_depth);
    tokio::spawn(run(store, base_currency, config, clock, rx));
    tx
}

async fn run(
    store: Arc<dyn Store>,
    base: String,
    config: WriterConfig,
    clock: Clock,
    mut rx: mpsc::Receiver<Job>,
) {
    // A job taken from the queue that did not fit the batch before it opens the next one.
    let mut next: Option<Job> = None;
    loop {
        let first = match next.take() {
            Some(j) => j,
            None => match rx.recv().await {
                Some(j) => j,
                None => break,
            },
        };
        let max = if first.bulk {
            config.import_batch_max.max(1)
        } else {
            config.max_batch
        };
        let mut lines = first.lines();
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while jobs.len() < max && lines < config.max_batch_lines {
            let job = match rx.try_recv() {
                Ok(j) => j,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if config.max_wait.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(j)) => j,
                        _ => break,
                    }
                }
            };
            lines += job.lines();
            if lines > config.max_batch_lines {
                next = Some(job);
                break;
            }
            jobs.push(job);
        }
        run_batch(&*store, &base, &config, &clock, jobs).await;
    }
}

async fn run_batch(
    store: &dyn Store,
    base: &str,
    config: &WriterConfig,
    clock: &Clock,
    jobs: Vec<Job>,
) {
    match guarded_attempt(store, base, config, clock, &jobs).await {
        Ok(results) => answer(jobs, results),
        Err(e) if jobs.len() > 1 => {
            // The batch failed as a whole (a constraint the domain should have caught, or a
            // database fault): isolate the culprit by committing each document alone.
            tracing::warn!(error = %e, size = jobs.len(), "batch failed; committing its documents one by one");
            for job in jobs {
                let r =
                    guarded_attempt(store, base, config, clock, std::slice::from_ref(&job)).await;
                match r {
                    Ok(mut results) => answer(vec![job], vec![results.remove(0)]),
                    Err(e) => {
                        tracing::error!(error = %e, "document failed to commit");
                        let _ = job.reply.send(Err(ServiceError::Store(e)));
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "document failed to commit");
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(ServiceError::Store(StoreError::Backend(e.to_string()))));
            }
        }
    }
}

fn answer(jobs: Vec<Job>, results: Vec<Result<Outcome, ServiceError>>) {
    assert_eq!(jobs.len(), results.len());
    for (job, r) in jobs.into_iter().zip(results) {
        // A caller that went away (client disconnected) does not undo what was committed.
        let _ = job.reply.send(r);
    }
}

/// An attempt at a batch in which a panic (a bug: a broken assertion in the domain or in a
/// store) fails the batch as a database error does instead of ending the writer, which would
/// leave every later request without an answer: the batch's transaction is dropped, so rolled
/// back; the one-by-one fallback then isolates the document, which alone gets an opaque 500;
/// and the writer goes on.
async fn guarded_attempt(
    store: &dyn Store,
    base: &str,
    config: &WriterConfig,
    clock: &Clock,
    jobs: &[Job],
) -> Result<Vec<Result<Outcome, ServiceError>>, StoreError> {
    use futures_util::FutureExt;
    let attempt = attempt_with_retries(store, base, config, clock, jobs);
    match std::panic::AssertUnwindSafe(attempt).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, size = jobs.len(), "the writer panicked on a batch; it was rolled back");
            Err(StoreError::Backend(format!("the writer panicked: {what}")))
        }
    }
}

async fn attempt_with_retries(
    store: &dyn Store,
    base: &str,
    config: &WriterConfig,
    clock: &Clock,
    jobs: &[Job],
) -> Result<Vec<Result<Outcome, ServiceError>>, StoreError> {
    let mut tries = 0;
    loop {
        match attempt(store, base, clock, jobs).await {
            Err(StoreError::Busy(msg)) if tries < config.retries => {
                tries += 1;
                tracing::debug!(%msg, tries, "database busy; retrying the batch");
                tokio::time::sleep(Duration::from_millis(2u64 << tries.min(8))).await;
            }
            other => return other,
        }
    }
}

/// Postings decided since the last part of a batch was handed to the database, past which the
/// writer hands over the next part: the database writes it while the writer decides what
/// follows, so that a large batch (an import) keeps both busy instead of taking turns. Small
/// batches (an HTTP burst) never reach it and are written once, at their end, as before.
const WRITE_BEHIND_POSTINGS: usize = 2_048;

/// What a part written behind gives back: the transaction, and how the write went.
type Written = (Box<dyn WriteTx>, Result<(), StoreError>);

/// The batch's transaction, with at most one part of the batch being written behind the
/// writer's back by a task of its own. Every other use of the transaction first waits for that
/// part, so the database sees the batch's statements in the order the writer made them.
struct Tx {
    tx: Option<Box<dyn WriteTx>>,
    behind: Option<tokio::task::JoinHandle<Written>>,
}

impl Tx {
    /// The transaction, once the part being written behind (if any) is written; that part's
    /// failure is this call's.
    async fn get(&mut self) -> Result<&mut dyn WriteTx, StoreError> {
        if let Some(task) = self.behind.take() {
            let (tx, written) = task.await.map_err(|e| {
                // A panic in a store while it wrote: the transaction went down with the task,
                // so it was rolled back; the batch fails as on a database error.
                StoreError::Backend(format!("the writer panicked while writing: {e}"))
            })?;
            self.tx = Some(tx);
            written?;
        }
        Ok(&mut **self
            .tx
            .as_mut()
            .expect("the transaction is here unless written behind"))
    }

    /// Starts writing `part` on a task of its own and returns at once.
    async fn write_behind(&mut self, part: Arc<WriteBatch>) -> Result<(), StoreError> {
        self.get().await?;
        let mut tx = self.tx.take().expect("got above");
        self.behind = Some(tokio::spawn(async move {
            let written = tx.write(&part).await;
            (tx, written)
        }));
        // A task spawned from a worker waits in that worker's next-task slot, which no other
        // worker may take, until the spawner yields: yield once, so that the write starts now
        // and then carries on wherever it is woken, while this task decides what follows.
        tokio::task::yield_now().await;
        Ok(())
    }

    /// The transaction itself, once the part being written behind (if any) is written.
    async fn finish(mut self) -> Result<Box<dyn WriteTx>, StoreError> {
        self.get().await?;
        Ok(self.tx.take().expect("got above"))
    }

    /// Loads what `needs` names and `state` lacks; a need the state already meets does not
    /// wait for the part being written.
    async fn load(&mut self, needs: &Needs, state: &mut State) -> Result<(), StoreError> {
        let missing = state.missing(needs);
        if missing.is_empty() {
            return Ok(());
        }
        self.get().await?.load(&missing, state).await
    }
}

impl Drop for Tx {
    /// An attempt given up (a failed load, a panic) stops the part being written, so that its
    /// transaction is rolled back now rather than after the write, which frees the write lock
    /// for the retry or the one-by-one fallback sooner.
    fn drop(&mut self) {
        if let Some(task) = self.behind.take() {
            task.abort();
        }
    }
}

/// What one attempt at a batch accumulates.
struct Pending {
    state: State,
    /// What has been decided and not yet handed to the database.
    batch: WriteBatch,
    /// Parts of the batch handed to the database (written, or being written), kept so that a
    /// repeat of a document later in the batch can be answered from them.
    handed: Vec<Arc<WriteBatch>>,
    /// Lots created by the documents in `batch`, written with their part.
    lots: Vec<ledger::LotNo>,
    /// Postings of the entries in `batch`.
    postings: usize,
    seq: u64,
    hash: Hash,
    recorded_at: String,
    /// Documents already recorded under the batch's ids, read once for the whole batch.
    recorded: HashMap<(String, String), DocumentRecord>,
    /// Idempotency records of the batch's keys, read once for the whole batch.
    keyed: HashMap<(String, String), IdempotencyRecord>,
    /// Where this batch recorded each id and key (the part, `handed.len()` for `batch`, and
    /// the position in it), so that a repeat later in the batch is found without a scan.
    ids_in_batch: HashMap<(String, String), (usize, usize)>,
    keys_in_batch: HashMap<(String, String), (usize, usize)>,
}

impl Pending {
    fn part(&self, part: usize) -> &WriteBatch {
        self.handed.get(part).map_or(&self.batch, |b| &**b)
    }

    /// Moves what has been decided into a part of its own: entries, the lots they created,
    /// their documents, keys and run reports, and the shipments changed since the last part
    /// (each written whole, so one changed again is written again). Balances stay for the
    /// batch's end, when they are netted.
    fn take_part(&mut self) -> WriteBatch {
        self.postings = 0;
        let mut part = std::mem::take(&mut self.batch);
        part.shipments = self.state.take_shipment_changes();
        part.lots = std::mem::take(&mut self.lots)
            .iter()
            .map(|no| {
                self.state
                    .lot(no)
                    .cloned()
                    .expect("created lots are in the state")
            })
            .collect();
        part
    }
}

async fn attempt(
    store: &dyn Store,
    base: &str,
    clock: &Clock,
    jobs: &[Job],
) -> Result<Vec<Result<Outcome, ServiceError>>, StoreError> {
    let tx = store.begin().await?;
    let head = tx.head().clone();
    let mut tx = Tx {
        tx: Some(tx),
        behind: None,
    };
    let mut p = Pending {
        state: State::new(head.closed_through),
        batch: WriteBatch::default(),
        handed: Vec::new(),
        lots: Vec::new(),
        postings: 0,
        seq: head.seq,
        hash: head.hash,
        recorded_at: clock()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("the current time formats"),
        recorded: HashMap::new(),
        keyed: HashMap::new(),
        ids_in_batch: HashMap::new(),
        keys_in_batch: HashMap::new(),
    };
    prefetch(tx.get().await?, &mut p, jobs).await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(process(&mut tx, &mut p, base, job).await?);
        if p.postings >= WRITE_BEHIND_POSTINGS {
            let part = Arc::new(p.take_part());
            tx.write_behind(part.clone()).await?;
            p.handed.push(part);
        }
    }
    let mut last = p.take_part();
    if p.seq != head.seq {
        last.head = Some(store::Head {
            seq: p.seq,
            hash: p.hash,
            closed_through: p.state.closed_through(),
        });
        let (new, known): (Vec<_>, Vec<_>) = p
            .state
            .deltas()
            .map(|(a, l, b)| {
                let sku = p.state.lot(l).map(|x| x.sku.clone());
                (
                    a.clone(),
                    l.clone(),
                    sku.expect("posted lots are loaded"),
                    b,
                )
            })
            .partition(|(a, l, _, _)| p.state.is_new_balance(a, l));
        last.new_balances = new;
        last.deltas = known;
    }
    // Every entry decided is in exactly one part, in sequence.
    let entries = p.handed.iter().map(|b| b.entries.len()).sum::<usize>() + last.entries.len();
    assert_eq!(u64::try_from(entries).ok(), Some(p.seq - head.seq));
    let mut tx = tx.finish().await?;
    if last.head.is_some() || !last.idempotency.is_empty() || !last.documents.is_empty() {
        tx.write(&last).await?;
    }
    tx.commit().await?;
    Ok(results)
}

/// Reads what the whole batch needs before any document is decided, a few queries per batch
/// instead of several per document: the ids and keys already recorded, what each document
/// needs first, and then what each needs once that is known (an acknowledgement's shipment
/// lines). Everything is read under the write lock, so it is what the batch writes on top of;
/// documents decided later in the batch see earlier ones through the state, which a load never
/// overwrites with an older value.
async fn prefetch(tx: &mut dyn WriteTx, p: &mut Pending, jobs: &[Job]) -> Result<(), StoreError> {
    let ids: Vec<(&str, &str)> = jobs.iter().filter_map(|j| j.doc.id()).collect();
    let keys: Vec<(&str, &str)> = jobs
        .iter()
        .filter_map(|j| j.idempotency_key.as_deref().map(|k| (j.actor.as_str(), k)))
        .collect();
    let mut first = Needs::default();
    for job in jobs {
        first.extend(job.doc.needs());
    }
    let (recorded, keyed) = tx.prefetch(&ids, &keys, &first, &mut p.state).await?;
    for d in recorded {
        p.recorded.insert((d.namespace.clone(), d.id.clone()), d);
    }
    for r in keyed {
        p.keyed.insert((r.actor.clone(), r.key.clone()), r);
    }
    let mut then = Needs::default();
    for job in jobs {
        then.extend(job.doc.needs_then(&p.state));
    }
    tx.load(&then, &mut p.state).await
}

/// Decides one document. The outer error is the store's (it fails the batch); the inner one
/// is this document's answer.
async fn process(
    tx: &mut Tx,
    p: &mut Pending,
    base: &str,
    job: &Job,
) -> Result<Result<Outcome, ServiceError>, StoreError> {
    let doc = &*job.doc;
    let request_hash = body_hash(doc.kind(), doc.body());
    if let Some(key) = &job.idempotency_key {
        let k = (job.actor.clone(), key.clone());
        let earlier = match p.keys_in_batch.get(&k) {
            Some(&(part, i)) => Some(p.part(part).idempotency[i].clone()),
            None => p.keyed.get(&k).cloned(),
        };
        if let Some(r) = earlier {
            return Ok(if r.request_hash == request_hash {
                Ok(Outcome {
                    status: r.status,
                    body: r.response,
                    replayed: true,
                })
            } else {
                Err(ServiceError::IdempotencyKeyReused { key: key.clone() })
            });
        }
    }
    if let Some((namespace, id)) = doc.id() {
        let k = (namespace.to_owned(), id.to_owned());
        let earlier = match p.ids_in_batch.get(&k) {
            Some(&(part, i)) => Some(p.part(part).documents[i].clone()),
            None => p.recorded.get(&k).cloned(),
        };
        if let Some(d) = earlier {
            return Ok(if d.body_hash == request_hash {
                Ok(Outcome {
                    status: 201,
                    body: d.response,
                    replayed: true,
                })
            } else {
                Err(Rejection::ExistsWithDifferentBody {
                    what: namespace,
                    id: id.to_owned(),
                }
                .into())
            });
        }
    }
    tx.load(&doc.needs(), &mut p.state).await?;
    let then = doc.needs_then(&p.state);
    tx.load(&then, &mut p.state).await?;
    let (decision, change) = match doc.decide_with_shipment(&p.state, base) {
        Ok(d) => d,
        Err(r) => return Ok(Err(r.into())),
    };
    let more = p.state.commit_needs(&decision.postings, &decision.new_lots);
    tx.load(&more, &mut p.state).await?;
    let seq = p.seq + 1;
    let entry = match p.state.commit(
        decision.header(seq, &job.actor),
        decision.postings.clone(),
        decision.new_lots.clone(),
    ) {
        Ok(e) => e,
        Err(r) => return Ok(Err(r.into())),
    };
    p.lots
        .extend(decision.new_lots.iter().map(|l| l.lot.clone()));
    let hash = entry.chain_hash(&p.hash);
    let body = match change {
        // The shipment changes only once its entry is committed, so a refused entry leaves
        // it as it was.
        Some(mut change) => {
            let moves = std::mem::take(&mut change.moves);
            let shipment = p.state.apply_shipment(change, seq);
            doc.respond_with_shipment(&entry, &hash, &p.recorded_at, &decision, &moves, shipment)
        }
        None => doc.finish(
            &p.state,
            &entry,
            &hash,
            &p.recorded_at,
            &decision,
            &mut p.batch,
        ),
    };
    p.seq = seq;
    p.hash = hash;
    p.postings += entry.postings().len();
    p.batch.entries.push(StoredEntry {
        entry,
        hash,
        recorded_at: p.recorded_at.clone(),
    });
    // An import counts outcomes and never reads a created document's answer (it is recorded
    // with the document, for replays and reads): it gets no copy, which saves building and
    // freeing one JSON tree per imported document.
    let answer = if job.bulk { Value::Null } else { body.clone() };
    if let Some(key) = &job.idempotency_key {
        p.keys_in_batch.insert(
            (job.actor.clone(), key.clone()),
            (p.handed.len(), p.batch.idempotency.len()),
        );
        p.batch.idempotency.push(IdempotencyRecord {
            actor: job.actor.clone(),
            key: key.clone(),
            request_hash: request_hash.clone(),
            status: 201,
            response: body.clone(),
        });
    }
    if let Some((namespace, id)) = doc.id() {
        p.ids_in_batch.insert(
            (namespace.to_owned(), id.to_owned()),
            (p.handed.len(), p.batch.documents.len()),
        );
        p.batch.documents.push(DocumentRecord {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
            kind: doc.kind().to_owned(),
            body_hash: request_hash,
            body: doc.body().clone(),
            response: body,
            entry_seq: Some(seq),
        });
    }
    Ok(Ok(Outcome {
        status: 201,
        body: answer,
        replayed: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Service, ServiceError};

    /// A document whose decision panics, as a bug in the domain would.
    struct Bug {
        body: Value,
    }

    impl Document for Bug {
        fn kind(&self) -> &'static str {
            "bug"
        }
        fn id(&self) -> Option<(&'static str, &str)> {
            None
        }
        fn body(&self) -> &Value {
            &self.body
        }
        fn needs(&self) -> Needs {
            Needs::default()
        }
        fn decide(&self, _: &State, _: &str) -> Result<Decision, Rejection> {
            panic!("a broken invariant");
        }
        fn respond(&self, _: &Entry, _: &Hash, _: &str, _: &Decision) -> Value {
            unreachable!("never decided")
        }
    }

    #[tokio::test]
    async fn a_panicking_document_fails_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let service = Service::open(&url, WriterConfig::default()).await.unwrap();
        for round in 0..3 {
            let r = service
                .submit(Box::new(Bug { body: Value::Null }), "test", None)
                .await;
            match r {
                Err(ServiceError::Store(StoreError::Backend(m))) => {
                    assert!(m.contains("a broken invariant"), "round {round}: {m}");
                }
                other => panic!("round {round}: expected the batch's failure, got {other:?}"),
            }
        }
        // Still serving: a real write goes through after the panics, and nothing the
        // panicking batches held was written.
        let closed = service
            .close_period(
                &crate::dto::PeriodCloseIn {
                    through: "2020-01-31".into(),
                },
                "test",
                None,
            )
            .await
            .unwrap();
        assert_eq!(closed.status, 201, "{closed:?}");
        let v = service.verify(&|_, _| {}).await.unwrap();
        assert!(v.ok && v.entries == 1, "{v:?}");
    }
}
