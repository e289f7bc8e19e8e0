//! The single write path: one task per service takes documents from a queue and commits them
//! in batches (group commit). Each document is decided on its own against the state the
//! earlier documents of the batch left, so one bad document never fails its neighbours; the
//! whole batch then commits in one transaction, and only then is anyone answered. While a
//! batch commits, the next is decided beside it (see `Writer::run`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledger::docs::Decision;
use ledger::shipment::ShipmentMove;
use ledger::{Account, Entry, Hash, LotNo, Needs, Rejection, Shipment, ShipmentChange, State};
use serde_json::Value;
use store::{
    BatchReads, DocumentRecord, Head, IdempotencyRecord, JsonText, Store, StoreError, StoredEntry,
    WriteBatch, WriteTx,
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

/// The answer to a write: the status, the body, and whether it replays an earlier answer. The
/// body is the text stored with the document, sent as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: u16,
    pub body: JsonText,
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
    /// The answer for a committed document, serialised once: it is stored, replayed and sent
    /// as that text.
    fn respond(
        &self,
        entry: &Entry,
        hash: &Hash,
        recorded_at: &str,
        decision: &Decision,
    ) -> JsonText;
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
    ) -> JsonText {
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
    ) -> JsonText {
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

/// The hash of a normalised request body (its compact JSON text), with the kind of request it
/// is.
pub(crate) fn body_hash(kind: &str, body: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Starts the writer task and returns its queue, and the count of batches it decided while
/// the batch before them committed.
pub(crate) fn spawn(
    store: Arc<dyn Store>,
    base_currency: String,
    config: WriterConfig,
    clock: Clock,
) -> (mpsc::Sender<Job>, Arc<AtomicU64>) {
    assert!(config.max_batch >= 1 && config.queue_depth >= 1);
    let (tx, rx) = mpsc::channel(config.queue_depth);
    let ahead = Arc::new(AtomicU64::new(0));
    let w = Writer {
        store,
        base: base_currency,
        config,
        clock,
        ahead: ahead.clone(),
    };
    tokio::spawn(w.run(rx));
    (tx, ahead)
}

/// Batches at most in one chain of batches each decided while the one before it commits (see
/// [`Writer::run`]): bounds the state carried from batch to batch (every key the chain
/// touched, and its parts, kept for replays) before the writer waits for a commit and starts
/// afresh from the database.
const CHAIN_BATCHES_MAX: usize = 16;

/// The writer task's fixed parts.
struct Writer {
    store: Arc<dyn Store>,
    base: String,
    config: WriterConfig,
    clock: Clock,
    /// Batches decided while the batch before them committed, and written in their turn.
    ahead: Arc<AtomicU64>,
}

/// A batch written whose commit runs on a task of its own, which answers the batch's callers
/// once the commit is durable; with what the next batch is decided on.
struct Behind {
    /// The commit; on failure it gives the batch's jobs back, unanswered.
    commit: tokio::task::JoinHandle<Result<(), (Vec<Job>, StoreError)>>,
    /// The state, head, ids and keys the batch left, on which the next is decided.
    p: Pending,
    /// The head before the batch: the last commit unless the commit behind has landed.
    before: (u64, Hash),
    /// Batches in the chain so far, this one included.
    length: usize,
}

impl Writer {
    /// Takes documents from the queue and commits them in batches. While a small batch (not an
    /// import's) commits, which on a disk that syncs by the byte is half of it, the next batch
    /// is decided beside it instead of after it: on the state the committing batch left, with
    /// what that state lacks read in a read-only transaction begun once the next batch's
    /// documents were all queued (so that it sees everything committed before any of them was
    /// sent). Once the commit behind lands, the next batch checks that the head is the one it
    /// was decided on (no other process wrote meanwhile), writes, and commits behind in its
    /// turn. Anything that goes wrong on the way (the commit behind fails, the head moved, a
    /// bill of materials is needed: its reads lock it against replacement, which a read-only
    /// transaction cannot) sends the batch down the plain path, decided again from the
    /// database; nothing decided ahead is written or answered before that.
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        // A job taken from the queue that did not fit the batch before it opens the next one.
        let mut next: Option<Job> = None;
        let mut behind: Option<Behind> = None;
        loop {
            let first = match next.take() {
                Some(j) => j,
                None => match rx.try_recv() {
                    Ok(j) => j,
                    Err(e) => {
                        // Nothing queued: the batch committing behind is seen through before
                        // the writer waits.
                        if let Some(b) = behind.take() {
                            self.landed(b.commit).await;
                        }
                        if matches!(e, mpsc::error::TryRecvError::Disconnected) {
                            break;
                        }
                        match rx.recv().await {
                            Some(j) => j,
                            None => break,
                        }
                    }
                },
            };
            let jobs = self.collect(first, &mut rx, &mut next).await;
            behind = match behind.take() {
                Some(b) if !jobs[0].bulk => self.chain(b, jobs).await,
                Some(b) => {
                    self.landed(b.commit).await;
                    self.run_batch(jobs, false).await
                }
                None => {
                    let ahead = !jobs[0].bulk;
                    self.run_batch(jobs, ahead).await
                }
            };
        }
        if let Some(b) = behind.take() {
            self.landed(b.commit).await;
        }
    }

    /// The batch that `first` opens: what is queued, up to the batch's bounds (waiting up to
    /// `max_wait` for more).
    async fn collect(
        &self,
        first: Job,
        rx: &mut mpsc::Receiver<Job>,
        next: &mut Option<Job>,
    ) -> Vec<Job> {
        let config = &self.config;
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
                *next = Some(job);
                break;
            }
            jobs.push(job);
        }
        jobs
    }

    /// A batch on the plain path: decided on what it reads under the write lock. With
    /// `ahead`, a batch that writes is left to commit behind the writer.
    async fn run_batch(&self, jobs: Vec<Job>, ahead: bool) -> Option<Behind> {
        match self.guarded_attempt(&jobs, ahead).await {
            Ok(Attempted::Committed(results)) => {
                answer(jobs, results);
                None
            }
            Ok(Attempted::Written(w)) => Some(self.behind(*w, jobs, 1).await),
            Err(e) if jobs.len() > 1 => {
                // The batch failed as a whole (a constraint the domain should have caught, or a
                // database fault): isolate the culprit by committing each document alone.
                tracing::warn!(error = %e, size = jobs.len(), "batch failed; committing its documents one by one");
                for job in jobs {
                    let r = self
                        .guarded_attempt(std::slice::from_ref(&job), false)
                        .await;
                    match r {
                        Ok(Attempted::Committed(mut results)) => {
                            answer(vec![job], vec![results.remove(0)]);
                        }
                        Ok(Attempted::Written(_)) => unreachable!("committed where it was run"),
                        Err(e) => {
                            tracing::error!(error = %e, "document failed to commit");
                            let _ = job.reply.send(Err(ServiceError::Store(e)));
                        }
                    }
                }
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "document failed to commit");
                for job in jobs {
                    let _ = job
                        .reply
                        .send(Err(ServiceError::Store(StoreError::Backend(e.to_string()))));
                }
                None
            }
        }
    }

    /// Starts the commit of a written batch on a task of its own.
    async fn behind(&self, w: Uncommitted, jobs: Vec<Job>, length: usize) -> Behind {
        let Uncommitted {
            results,
            tx,
            p,
            before,
        } = w;
        let commit = tokio::spawn(async move {
            match tx.commit().await {
                Ok(()) => {
                    answer(jobs, results);
                    Ok(())
                }
                Err(e) => Err((jobs, e)),
            }
        });
        // A task spawned from a worker waits in that worker's next-task slot until the spawner
        // yields (see `Tx::write_behind`): yield, so that the commit starts now.
        tokio::task::yield_now().await;
        Behind {
            commit,
            p,
            before,
            length,
        }
    }

    /// Waits for a commit behind; a batch whose commit failed is run again on the plain path
    /// (nothing of it was written), which isolates a culprit. Whether it committed.
    async fn landed(
        &self,
        commit: tokio::task::JoinHandle<Result<(), (Vec<Job>, StoreError)>>,
    ) -> bool {
        match commit.await {
            Ok(Ok(())) => true,
            Ok(Err((jobs, e))) => {
                tracing::warn!(error = %e, size = jobs.len(), "a batch's commit failed; running it again");
                self.run_batch(jobs, false).await;
                false
            }
            Err(e) => {
                // A panic while committing: the transaction went down with the task, so it was
                // rolled back, and the callers' replies with it (they hear the writer is gone).
                tracing::error!(error = %e, "the writer's commit panicked");
                false
            }
        }
    }

    /// Decides `jobs` while the batch behind commits (see [`Writer::run`]), then writes them
    /// once it has landed and leaves their commit behind in turn.
    async fn chain(&self, b: Behind, jobs: Vec<Job>) -> Option<Behind> {
        use futures_util::FutureExt;
        let Behind {
            commit,
            mut p,
            before,
            length,
        } = b;
        let start = (p.seq, p.hash);
        let decided = std::panic::AssertUnwindSafe(self.decide_ahead(&mut p, before, &jobs))
            .catch_unwind()
            .await;
        let landed = self.landed(commit).await;
        let written = match decided {
            Ok(Ok((results, part))) if landed => self
                .write_ahead(start, &part)
                .await
                .map(|tx| (results, part, tx)),
            Ok(Err(e)) if landed => {
                tracing::debug!(error = %e, "a batch could not be decided ahead; deciding it again");
                None
            }
            // The batch behind did not commit, or deciding ahead panicked: the state is not
            // the ledger's.
            _ => None,
        };
        // The plain path decides again from the database (and isolates a panic).
        let Some((results, part, tx)) = written else {
            return self.run_batch(jobs, true).await;
        };
        self.ahead.fetch_add(1, Ordering::Relaxed);
        p.handed.push(Arc::new(part));
        let w = Uncommitted {
            results,
            tx,
            p,
            before: start,
        };
        let b = self.behind(w, jobs, length + 1).await;
        if b.length < CHAIN_BATCHES_MAX {
            return Some(b);
        }
        // The chain is long enough: this commit is waited for, and the next batch reads afresh.
        self.landed(b.commit).await;
        None
    }

    /// Begins a batch decided ahead on the head `start` and writes `part` in it: the
    /// transaction, or nothing when the batch must be decided again (no transaction, another
    /// process wrote since, the write was refused), its transaction rolled back by then.
    async fn write_ahead(&self, start: (u64, Hash), part: &WriteBatch) -> Option<Box<dyn WriteTx>> {
        let mut tx = self.store.begin().await.ok()?;
        if (tx.head().seq, tx.head().hash) != start {
            // Another process wrote since: what was decided may not hold.
            tracing::debug!("the head moved while a batch was decided ahead; deciding it again");
            return None;
        }
        if let Err(e) = tx.write(part).await {
            tracing::debug!(error = %e, "a batch decided ahead failed to write; deciding it again");
            return None;
        }
        Some(tx)
    }

    /// Decides `jobs` on `p`, reading what it lacks in a read-only transaction begun now:
    /// their answers, and the part to write.
    async fn decide_ahead(
        &self,
        p: &mut Pending,
        before: (u64, Hash),
        jobs: &[Job],
    ) -> Result<(Vec<Result<Outcome, ServiceError>>, WriteBatch), StoreError> {
        let read = self.store.begin_read().await?;
        let seen = (read.head().seq, read.head().hash);
        // The last commit is the batch behind's, or the one before it if that has not landed
        // yet; any other head is another process's write, which the state does not hold.
        if seen != before && seen != (p.seq, p.hash) {
            return Err(StoreError::Busy("another process wrote".into()));
        }
        let mut ahead = Ahead(read);
        let start = p.seq;
        p.begin_batch(&self.clock);
        prefetch(&mut ahead, p, jobs).await?;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            results.push(process(&mut ahead, p, &self.base, job).await?);
        }
        // Ended on a task of its own: under the HTTP benchmark's load PostgreSQL's rollback
        // took 0.5-2 ms, on the way to the write of a batch that had nothing left to read.
        tokio::spawn(async move {
            if let Err(e) = ahead.0.end().await {
                // Rolled back when its connection is next used instead.
                tracing::debug!(error = %e, "a read-only transaction did not end");
            }
        });
        let part = p.close(start);
        let entries = part.entries.len();
        assert_eq!(u64::try_from(entries).ok(), Some(p.seq - start));
        Ok((results, part))
    }

    /// An attempt at a batch in which a panic (a bug: a broken assertion in the domain or in a
    /// store) fails the batch as a database error does instead of ending the writer, which
    /// would leave every later request without an answer: the batch's transaction is dropped,
    /// so rolled back; the one-by-one fallback then isolates the document, which alone gets an
    /// opaque 500; and the writer goes on.
    async fn guarded_attempt(&self, jobs: &[Job], ahead: bool) -> Result<Attempted, StoreError> {
        use futures_util::FutureExt;
        let attempt = self.attempt_with_retries(jobs, ahead);
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
        &self,
        jobs: &[Job],
        ahead: bool,
    ) -> Result<Attempted, StoreError> {
        let mut tries = 0;
        loop {
            match attempt(&*self.store, &self.base, &self.clock, jobs, ahead).await {
                Err(StoreError::Busy(msg)) if tries < self.config.retries => {
                    tries += 1;
                    tracing::debug!(%msg, tries, "database busy; retrying the batch");
                    tokio::time::sleep(Duration::from_millis(2u64 << tries.min(8))).await;
                }
                other => return other,
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

/// What an attempt at a batch came to.
enum Attempted {
    Committed(Vec<Result<Outcome, ServiceError>>),
    /// Written and not yet committed (an attempt asked to leave the commit behind). Boxed:
    /// the state it carries is large, and the other answer is a list.
    Written(Box<Uncommitted>),
}

/// A batch written in its transaction, not yet committed.
struct Uncommitted {
    results: Vec<Result<Outcome, ServiceError>>,
    tx: Box<dyn WriteTx>,
    /// The state and head the batch left.
    p: Pending,
    /// The head the batch was written on.
    before: (u64, Hash),
}

/// A read-only transaction at the last commit, for a batch decided while the one before it
/// commits.
struct Ahead(Box<dyn store::ReadTx>);

impl Ahead {
    /// Refuses a read the plain path makes under the write lock for a reason: a bill of
    /// materials, which the writer reads locked against replacement until its run commits.
    fn check(needs: &Needs) -> Result<(), StoreError> {
        if needs.boms.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Busy(
                "a bill of materials is read under the write lock".into(),
            ))
        }
    }
}

/// The reads of a batch decided ahead: the read-only transaction's, but for what only the
/// plain path may read. (A batch on the plain path reads through its [`Tx`].)
#[async_trait::async_trait]
impl BatchReads for Ahead {
    fn head(&self) -> &Head {
        self.0.head()
    }

    async fn prefetch(
        &mut self,
        ids: &[(&str, &str)],
        keys: &[(&str, &str)],
        needs: &Needs,
        state: &mut State,
    ) -> store::Result<(Vec<DocumentRecord>, Vec<IdempotencyRecord>)> {
        Ahead::check(&state.missing(needs))?;
        self.0.prefetch(ids, keys, needs, state).await
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
    /// The head the transaction began on.
    head: Head,
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
}

#[async_trait::async_trait]
impl BatchReads for Tx {
    fn head(&self) -> &Head {
        &self.head
    }

    async fn prefetch(
        &mut self,
        ids: &[(&str, &str)],
        keys: &[(&str, &str)],
        needs: &Needs,
        state: &mut State,
    ) -> store::Result<(Vec<DocumentRecord>, Vec<IdempotencyRecord>)> {
        self.get().await?.prefetch(ids, keys, needs, state).await
    }

    /// Loads what `needs` names and `state` lacks; a need the state already meets does not
    /// wait for the part being written.
    async fn load(&mut self, needs: &Needs, state: &mut State) -> store::Result<()> {
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
    /// Balances with no stored row before the state began that a batch of the chain has
    /// written: a later batch adds to them instead of inserting them.
    balances_written: HashSet<(Account, LotNo)>,
}

impl Pending {
    /// Nothing decided yet, on top of `head`.
    fn new(head: &Head) -> Pending {
        Pending {
            state: State::new(head.closed_through),
            batch: WriteBatch::default(),
            handed: Vec::new(),
            lots: Vec::new(),
            postings: 0,
            seq: head.seq,
            hash: head.hash,
            recorded_at: String::new(),
            recorded: HashMap::new(),
            keyed: HashMap::new(),
            ids_in_batch: HashMap::new(),
            keys_in_batch: HashMap::new(),
            balances_written: HashSet::new(),
        }
    }

    /// Opens the next batch on what earlier ones left (parts of earlier batches of a chain stay
    /// in `handed`, for replays): its time of record is now.
    fn begin_batch(&mut self, clock: &Clock) {
        assert!(self.batch.entries.is_empty() && self.lots.is_empty());
        self.recorded_at = clock()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("the current time formats");
    }

    /// The batch's last part: what was decided and not yet handed over, and, when the batch
    /// posted anything since the head was `start`, its balance changes netted and the new head.
    fn close(&mut self, start: u64) -> WriteBatch {
        let mut last = self.take_part();
        if self.seq != start {
            last.head = Some(Head {
                seq: self.seq,
                hash: self.hash,
                closed_through: self.state.closed_through(),
            });
            for (a, l, b) in self.state.take_deltas() {
                let sku = self.state.lot(&l).map(|x| x.sku.clone());
                let sku = sku.expect("posted lots are loaded");
                // New only the first time: an earlier batch of a chain may have inserted it.
                let new = self.state.is_new_balance(&a, &l)
                    && self.balances_written.insert((a.clone(), l.clone()));
                if new {
                    last.new_balances.push((a, l, sku, b));
                } else {
                    last.deltas.push((a, l, sku, b));
                }
            }
        }
        last
    }

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

/// One attempt at a batch on the plain path, under the write lock from its first read to its
/// commit. With `ahead`, a batch that posted anything is written and left uncommitted.
async fn attempt(
    store: &dyn Store,
    base: &str,
    clock: &Clock,
    jobs: &[Job],
    ahead: bool,
) -> Result<Attempted, StoreError> {
    let tx = store.begin().await?;
    let head = tx.head().clone();
    let mut tx = Tx {
        tx: Some(tx),
        behind: None,
        head: head.clone(),
    };
    let mut p = Pending::new(&head);
    p.begin_batch(clock);
    prefetch(&mut tx, &mut p, jobs).await?;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        results.push(process(&mut tx, &mut p, base, job).await?);
        if p.postings >= WRITE_BEHIND_POSTINGS {
            let part = Arc::new(p.take_part());
            tx.write_behind(part.clone()).await?;
            p.handed.push(part);
        }
    }
    let last = p.close(head.seq);
    // Every entry decided is in exactly one part, in sequence.
    let entries = p.handed.iter().map(|b| b.entries.len()).sum::<usize>() + last.entries.len();
    assert_eq!(u64::try_from(entries).ok(), Some(p.seq - head.seq));
    let mut tx = tx.finish().await?;
    if last.head.is_some() || !last.idempotency.is_empty() || !last.documents.is_empty() {
        tx.write(&last).await?;
    }
    if ahead && last.head.is_some() {
        p.handed.push(Arc::new(last));
        return Ok(Attempted::Written(Box::new(Uncommitted {
            results,
            tx,
            p,
            before: (head.seq, head.hash),
        })));
    }
    tx.commit().await?;
    Ok(Attempted::Committed(results))
}

/// Reads what the whole batch needs before any document is decided, a few queries per batch
/// instead of several per document: the ids and keys already recorded, what each document
/// needs first, and then what each needs once that is known (an acknowledgement's shipment
/// lines). On the plain path everything is read under the write lock, so it is what the batch
/// writes on top of; a batch decided ahead reads the last commit, and its state holds what the
/// batches before it wrote since. Documents decided later see earlier ones through the state,
/// which a load never overwrites with an older value.
async fn prefetch(
    tx: &mut impl BatchReads,
    p: &mut Pending,
    jobs: &[Job],
) -> Result<(), StoreError> {
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
    tx: &mut impl BatchReads,
    p: &mut Pending,
    base: &str,
    job: &Job,
) -> Result<Result<Outcome, ServiceError>, StoreError> {
    let doc = &*job.doc;
    // The body serialised once: hashed here, and stored as this text if it is recorded.
    let body_text = JsonText::of(doc.body());
    let request_hash = body_hash(doc.kind(), body_text.as_str());
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
    let response = match change {
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
    // with the document, for replays and reads): it gets no copy of the text.
    let answer = if job.bulk {
        JsonText::null()
    } else {
        response.clone()
    };
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
            response: response.clone(),
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
            body: body_text,
            response,
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
        fn respond(&self, _: &Entry, _: &Hash, _: &str, _: &Decision) -> JsonText {
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
