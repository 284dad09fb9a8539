//! [`Storage`]: what the bot holds in front of a [`Store`]. Analytics, feedback, token counts and
//! cached answers go through a bounded queue to one writer task that commits them in batches (every
//! 50 ms or 500 rows); a full queue drops the write and counts it, and never delays an answer. A
//! batch that fails (database lost) is kept and retried with back-off while new writes wait in the
//! queue, so a short outage loses nothing. An in-memory LRU sits in front of the shared answer
//! cache. [`Storage::flush`] waits until everything queued so far is committed (clean shutdown,
//! tests).
//!
//! Health: every call to the store, through [`Storage::store`] or the writer, is watched. After
//! [`FAILURES_BEFORE_NOT_READY`] failed calls in a row the store counts as failing and
//! [`Storage::readiness`] says so. For `/readyz` ([`Storage::check_readiness`]), a failing SQLite
//! file makes the replica not ready (503) and a failing shared PostgreSQL makes it "degraded".
//! One successful call (a reconnect, an SQLite file opened again) makes it ready again. While it
//! is failing, [`Storage::check_readiness`] pings it, so a replica taken out of rotation (and sent
//! no requests) still notices the recovery.
//!
//! Replay checks ([`Storage::first_sighting`]): with PostgreSQL every check is a synchronous,
//! shared insert in the database. With SQLite (one process) fresh ids are answered from a
//! [`ReplayMemory`] and committed by the writer with its next batch; see `replay.rs` for what
//! stays with the store and why the answers stay exact.

use super::replay::{ReplayMemory, Verdict};
use super::{
    Backend, BudgetScope, ClaimOutcome, ConversationKey, Dump, GuildStats, LlmClaim, Report, Store,
    StoreError, Usage, Write,
};
use crate::answer::Answer;
use crate::engine::PriorTurn;
use crate::metrics::StorageFigures;
use crate::util::clock::now_unix;
use futures::FutureExt;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How the writer batches and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageOptions {
    /// Writes waiting at most; more are dropped and counted.
    pub queue_capacity: usize,
    /// Rows per batch at most.
    pub batch_rows: usize,
    /// How long a batch collects rows after its first one.
    pub batch_interval: Duration,
    /// Answers kept in the in-memory cache.
    pub memory_cache_entries: usize,
    /// Longest wait between two retries of a failed batch.
    pub max_backoff: Duration,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            queue_capacity: 10_000,
            batch_rows: 500,
            batch_interval: Duration::from_millis(50),
            memory_cache_entries: 1_000,
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What the writer has done so far, for `/metrics`.
#[derive(Debug, Default)]
pub struct StorageCounters {
    /// Writes committed.
    pub written: AtomicU64,
    /// Writes dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Batches that failed (each is retried).
    pub failed_batches: AtomicU64,
    /// Replay checks answered from memory (SQLite).
    pub replay_from_memory: AtomicU64,
    /// Replay checks answered by the store.
    pub replay_from_store: AtomicU64,
}

/// A write is boxed: the queue holds pointers, not 200-byte records.
enum Queued {
    Write(Box<Write>),
    Flush(oneshot::Sender<()>),
}

/// Failed store calls in a row after which the store counts as failing (`/readyz` 503): one
/// failure can be a blip (a lock held a moment too long); three in a row is a store that does
/// not work.
pub const FAILURES_BEFORE_NOT_READY: u32 = 3;
/// How long [`Storage::check_readiness`] waits for a failing store's ping.
const READINESS_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// A store with its writer queue, answer LRU and health. Share it in an `Arc`.
pub struct Storage {
    /// The store, watched: every call's outcome goes to `health`.
    store: Arc<dyn Store>,
    health: Arc<Health>,
    queue: mpsc::Sender<Queued>,
    counters: Arc<StorageCounters>,
    memory_cache: Mutex<LruCache<String, (i64, Answer)>>,
    /// The migrations have run: the database is usable (`/readyz`).
    ready: AtomicBool,
    /// Why the database is not ready, for `/readyz` and logs (no credentials).
    not_ready_reason: Mutex<Option<String>>,
    /// The in-memory replay check (SQLite only: the one process is the only witness needed).
    replay: Option<Arc<ReplayMemory>>,
}

impl Storage {
    /// Starts the writer task on the current tokio runtime. `ready` says whether `store` is
    /// usable already (SQLite: migrated when opened); otherwise call [`Storage::set_ready`].
    /// With SQLite, replay checks are answered from memory once the recent ids the file holds
    /// are loaded (a task started here; until then they ask the store).
    pub fn start(store: Arc<dyn Store>, options: StorageOptions, ready: bool) -> Arc<Storage> {
        let health = Arc::new(Health::new(store.backend()));
        let replay =
            (store.backend() == Backend::Sqlite).then(|| Arc::new(ReplayMemory::new(now_unix())));
        let store: Arc<dyn Store> = Arc::new(Watched {
            inner: store,
            health: Arc::clone(&health),
        });
        let (queue, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let counters = Arc::new(StorageCounters::default());
        tokio::spawn(run_writer(
            Arc::clone(&store),
            receiver,
            Arc::clone(&counters),
            options,
            replay.clone(),
        ));
        if let Some(replay) = &replay {
            tokio::spawn(load_replay_ids(
                Arc::clone(&store),
                Arc::clone(replay),
                options.max_backoff,
            ));
        }
        let entries = NonZeroUsize::new(options.memory_cache_entries).unwrap_or(NonZeroUsize::MIN);
        Arc::new(Storage {
            store,
            health,
            queue,
            counters,
            memory_cache: Mutex::new(LruCache::new(entries)),
            ready: AtomicBool::new(ready),
            not_ready_reason: Mutex::new(
                (!ready).then(|| "connecting to the database".to_string()),
            ),
            replay,
        })
    }

    /// Whether interaction `id` is seen for the first time (`false`: a replay). PostgreSQL: the
    /// store's shared check. SQLite: memory for fresh ids (the id is committed with the writer's
    /// next batch), the store for the others (see `replay.rs`).
    pub async fn first_sighting(&self, id: &str, now_unix: i64) -> Result<bool, StoreError> {
        let Some(memory) = &self.replay else {
            self.counters
                .replay_from_store
                .fetch_add(1, Ordering::Relaxed);
            return self.store.first_sighting(id, now_unix).await;
        };
        let verdict = memory.check(id, now_unix);
        let counter = match verdict {
            Verdict::AskStore => &self.counters.replay_from_store,
            Verdict::New | Verdict::Replay => &self.counters.replay_from_memory,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match verdict {
            Verdict::New => Ok(true),
            Verdict::Replay => Ok(false),
            Verdict::AskStore => self.store.first_sighting(id, now_unix).await,
        }
    }

    /// Waits until replay checks are answered from memory (SQLite, once the recent ids are
    /// loaded); returns at once for PostgreSQL, which never does.
    pub async fn replay_memory_loaded(&self) {
        if let Some(memory) = &self.replay {
            memory.wait_loaded().await;
        }
    }

    /// What `/metrics` shows of this storage: the writer's counters, replay checks by who
    /// answered, ids held in memory, reopened files.
    pub fn figures(&self) -> StorageFigures {
        let counters = &self.counters;
        StorageFigures {
            written: counters.written.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed)
                + self.replay.as_ref().map_or(0, |memory| memory.unqueued()),
            failed_batches: counters.failed_batches.load(Ordering::Relaxed),
            reopened: self.store.reopened(),
            replay_from_memory: counters.replay_from_memory.load(Ordering::Relaxed),
            replay_from_store: counters.replay_from_store.load(Ordering::Relaxed),
            replay_ids_in_memory: self
                .replay
                .as_ref()
                .map_or(0, |memory| memory.held() as u64),
            unavailable: self.readiness().is_err(),
        }
    }

    /// The store behind the queue (reads, claims, reports); every call through it counts toward
    /// the store's health.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The writer's counters.
    pub fn counters(&self) -> &Arc<StorageCounters> {
        &self.counters
    }

    /// Queues a write; never waits. A full queue drops it (counted).
    pub fn enqueue(&self, write: Write) {
        if self.queue.try_send(Queued::Write(Box::new(write))).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every write queued before this call is committed, or `timeout` passes;
    /// `true` when everything was written.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (done, written) = oneshot::channel();
        let flushed =
            async { self.queue.send(Queued::Flush(done)).await.is_ok() && written.await.is_ok() };
        tokio::time::timeout(timeout, flushed)
            .await
            .unwrap_or(false)
    }

    /// Marks the database usable or not; `reason` says why not (shown by `/readyz`).
    pub fn set_ready(&self, ready: bool, reason: Option<String>) {
        self.ready.store(ready, Ordering::Release);
        if let Ok(mut slot) = self.not_ready_reason.lock() {
            *slot = if ready { None } else { reason };
        }
    }

    /// `Ok` once the database is connected and migrated, else why not. A store that is
    /// connected but failing is still connected: see [`Storage::readiness`].
    pub fn connected(&self) -> Result<(), String> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let reason = self
            .not_ready_reason
            .lock()
            .ok()
            .and_then(|reason| reason.clone());
        Err(reason.unwrap_or_else(|| "the database is not ready".to_string()))
    }

    /// `Ok` when the database is connected and its calls succeed, else why not (for callers
    /// that skip the store while it fails).
    pub fn readiness(&self) -> Result<(), String> {
        self.connected()?;
        self.health.failing().map_or(Ok(()), Err)
    }

    /// What the store means for this replica's `/readyz`, after pinging the store when it is
    /// failing (bounded to a second), so that a recovery is noticed even when no request reaches
    /// this replica. A failing SQLite file is this replica's own fault: not ready, so traffic
    /// goes elsewhere. A failing PostgreSQL is shared by every replica: taking them all out of
    /// rotation would turn a store outage into a full one, so each stays ready (extractive
    /// answers need no store; LLM answers fail closed) and reports itself degraded.
    pub async fn check_readiness(&self) -> StoreReadiness {
        if self.connected().is_ok() && self.health.failing().is_some() {
            let ping = tokio::time::timeout(READINESS_PING_TIMEOUT, self.store.ping()).await;
            if ping.is_err() {
                self.health.record_failure(&format!(
                    "the store did not answer a ping within {} ms",
                    READINESS_PING_TIMEOUT.as_millis()
                ));
            }
        }
        if let Err(reason) = self.connected() {
            return StoreReadiness::NotReady(reason);
        }
        match (self.health.failing(), self.health.backend) {
            (None, _) => StoreReadiness::Ready,
            (Some(reason), Backend::Sqlite) => StoreReadiness::NotReady(reason),
            (Some(reason), Backend::Postgres) => StoreReadiness::Degraded(reason),
        }
    }

    /// Charges an LLM answer (see [`Store::claim_llm`]).
    pub async fn claim_llm(&self, claim: &LlmClaim) -> Result<ClaimOutcome, StoreError> {
        self.store.claim_llm(claim).await
    }

    /// A cached answer younger than `ttl`: from memory, else from the shared store (then kept in
    /// memory).
    pub async fn cached_answer(
        &self,
        key: &str,
        ttl: Duration,
        now_unix: i64,
    ) -> Result<Option<Answer>, StoreError> {
        let oldest = super::cached_since(ttl, now_unix);
        if let Ok(mut memory) = self.memory_cache.lock() {
            match memory.get(key) {
                Some((at, answer)) if *at >= oldest => return Ok(Some(answer.clone())),
                Some(_) => {
                    memory.pop(key);
                }
                None => {}
            }
        }
        let Some((at, answer)) = self.store.stored_answer(key, oldest).await? else {
            return Ok(None);
        };
        if let Ok(mut memory) = self.memory_cache.lock() {
            memory.put(key.to_string(), (at, answer.clone()));
        }
        Ok(Some(answer))
    }

    /// Caches an answer in memory now and in the shared store through the queue.
    pub fn put_cached_answer(&self, key: &str, answer: &Answer, now_unix: i64) {
        let write = match Write::cached_answer(key, answer, now_unix) {
            Ok(write) => write,
            Err(error) => {
                tracing::warn!(%error, "an answer could not be serialized for the cache");
                return;
            }
        };
        if let Ok(mut memory) = self.memory_cache.lock() {
            memory.put(key.to_string(), (now_unix, answer.clone()));
        }
        self.enqueue(write);
    }
}

/// The store's health as its calls tell it: failed calls in a row and the last error.
struct Health {
    backend: Backend,
    failures_in_a_row: AtomicU32,
    last_error: Mutex<String>,
}

impl Health {
    fn new(backend: Backend) -> Health {
        Health {
            backend,
            failures_in_a_row: AtomicU32::new(0),
            last_error: Mutex::new(String::new()),
        }
    }

    fn record<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.record_success(),
            Err(error) => self.record_failure(&error.to_string()),
        }
    }

    fn record_success(&self) {
        let failures = self.failures_in_a_row.swap(0, Ordering::AcqRel);
        if failures >= FAILURES_BEFORE_NOT_READY {
            tracing::info!(
                backend = self.backend.as_str(),
                "store calls succeed again; /readyz reports ready"
            );
        }
    }

    fn record_failure(&self, error: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = error.to_string();
        }
        let failures = self.failures_in_a_row.fetch_add(1, Ordering::AcqRel) + 1;
        if failures == FAILURES_BEFORE_NOT_READY {
            tracing::warn!(
                backend = self.backend.as_str(),
                %error,
                failures,
                "store calls keep failing; /readyz reports not ready until one succeeds"
            );
        }
    }

    /// Why the store counts as failing, when it does.
    fn failing(&self) -> Option<String> {
        let failures = self.failures_in_a_row.load(Ordering::Acquire);
        if failures < FAILURES_BEFORE_NOT_READY {
            return None;
        }
        let error = self
            .last_error
            .lock()
            .map(|last| last.clone())
            .unwrap_or_default();
        Some(format!(
            "the {} store is failing ({failures} calls in a row failed; the last: {error})",
            self.backend.as_str()
        ))
    }
}

/// The store's part in `/readyz` ([`Storage::check_readiness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreReadiness {
    /// Connected, and its calls succeed.
    Ready,
    /// A shared database keeps failing: the replica still serves (and says why it is degraded).
    Degraded(String),
    /// Not connected yet, or this replica's own SQLite file keeps failing: why.
    NotReady(String),
}

/// A store whose every call's outcome is recorded in a [`Health`].
struct Watched {
    inner: Arc<dyn Store>,
    health: Arc<Health>,
}

impl Watched {
    fn note<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.health.record(&result);
        result
    }
}

#[async_trait::async_trait]
impl Store for Watched {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    fn reopened(&self) -> u64 {
        self.inner.reopened()
    }
    async fn migrate(&self) -> Result<usize, StoreError> {
        self.note(self.inner.migrate().await)
    }
    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.note(self.inner.write_batch(writes).await)
    }
    async fn claim_llm(&self, claim: &LlmClaim) -> Result<ClaimOutcome, StoreError> {
        self.note(self.inner.claim_llm(claim).await)
    }
    async fn usage(&self, scope: &BudgetScope, day: &str) -> Result<Usage, StoreError> {
        self.note(self.inner.usage(scope, day).await)
    }
    async fn cached_answer_json(
        &self,
        key: &str,
        oldest_unix: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        self.note(self.inner.cached_answer_json(key, oldest_unix).await)
    }
    async fn first_sighting(
        &self,
        interaction_id: &str,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        self.note(self.inner.first_sighting(interaction_id, now_unix).await)
    }
    async fn interaction_ids_between(&self, first: u64, last: u64) -> Result<Vec<u64>, StoreError> {
        self.note(self.inner.interaction_ids_between(first, last).await)
    }
    async fn purge_older_than(&self, days: u32, now_unix: i64) -> Result<usize, StoreError> {
        self.note(self.inner.purge_older_than(days, now_unix).await)
    }
    async fn report(&self, since_days: u32, now_unix: i64) -> Result<Report, StoreError> {
        self.note(self.inner.report(since_days, now_unix).await)
    }
    async fn guild_stats(
        &self,
        guild_hash: &str,
        since_days: u32,
        now_unix: i64,
    ) -> Result<GuildStats, StoreError> {
        self.note(
            self.inner
                .guild_stats(guild_hash, since_days, now_unix)
                .await,
        )
    }
    async fn dump(&self) -> Result<Dump, StoreError> {
        self.note(self.inner.dump().await)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.note(self.inner.ping().await)
    }
    async fn conversation_turns(
        &self,
        conversation: &str,
        turns: usize,
        oldest_unix: i64,
    ) -> Result<Vec<PriorTurn>, StoreError> {
        self.note(
            self.inner
                .conversation_turns(conversation, turns, oldest_unix)
                .await,
        )
    }
    async fn record_turn(
        &self,
        conversation: &str,
        turn: &PriorTurn,
        at_unix: i64,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.note(
            self.inner
                .record_turn(conversation, turn, at_unix, keep)
                .await,
        )
    }
    async fn conversation_active_since(
        &self,
        conversation: &str,
        oldest_unix: i64,
    ) -> Result<bool, StoreError> {
        self.note(
            self.inner
                .conversation_active_since(conversation, oldest_unix)
                .await,
        )
    }
    async fn link_message(
        &self,
        message: &str,
        conversation: ConversationKey,
        at_unix: i64,
    ) -> Result<(), StoreError> {
        self.note(
            self.inner
                .link_message(message, conversation, at_unix)
                .await,
        )
    }
    async fn linked_conversation(
        &self,
        message: &str,
        oldest_unix: i64,
    ) -> Result<Option<ConversationKey>, StoreError> {
        self.note(self.inner.linked_conversation(message, oldest_unix).await)
    }
}

/// Loads the ids the SQLite file holds for memory's range (a restart keeps refusing what was
/// seen before it), retrying with back-off while the store fails; memory answers once it is done.
async fn load_replay_ids(store: Arc<dyn Store>, memory: Arc<ReplayMemory>, max_backoff: Duration) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let now = now_unix();
        let (first, last) = memory.range_to_load(now);
        match store.interaction_ids_between(first, last).await {
            Ok(ids) => {
                let count = ids.len();
                memory.load(ids, now);
                tracing::debug!(
                    ids = count,
                    "recent interaction ids loaded: replay checks answered from memory"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read recent interaction ids; replay checks ask the store until they are read");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff.max(Duration::from_millis(50)));
            }
        }
    }
}

/// Waits until `memory` has ids for the writer; never, without memory.
async fn replay_ids_waiting(memory: Option<&ReplayMemory>) {
    match memory {
        Some(memory) => memory.pending_ids().await,
        None => std::future::pending().await,
    }
}

/// The one writer: collects a batch, commits it in one transaction, retries it with back-off
/// while the database is down, and answers flushes once what came before them is committed.
/// The replay ids memory accepted go into every batch (one write for all of them), and memory
/// learns which of them are committed.
async fn run_writer(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Queued>,
    counters: Arc<StorageCounters>,
    options: StorageOptions,
    replay: Option<Arc<ReplayMemory>>,
) {
    let mut batch: Vec<Write> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut closed = false;
    let mut backoff = options.batch_interval.max(Duration::from_millis(10));
    let mut failing = false;
    // The newest replay generation in `batch`.
    let mut replay_generation: Option<u64> = None;
    loop {
        if batch.is_empty() && flushes.is_empty() && !closed {
            tokio::select! {
                queued = receiver.recv() => match queued {
                    Some(Queued::Write(write)) => batch.push(*write),
                    Some(Queued::Flush(done)) => flushes.push(done),
                    None => closed = true,
                },
                () = replay_ids_waiting(replay.as_deref()) => {}
            }
        }
        // Collect until the batch is full, the interval is over or someone waits for a flush.
        let deadline = Instant::now() + options.batch_interval;
        while !closed && flushes.is_empty() && batch.len() < options.batch_rows {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(Queued::Write(write))) => batch.push(*write),
                Ok(Some(Queued::Flush(done))) => flushes.push(done),
                Ok(None) => closed = true,
                Err(_) => break,
            }
        }
        if let Some((generation, ids)) = replay.as_ref().and_then(|memory| memory.take_pending()) {
            batch.push(Write::SeenInteractions {
                ids,
                at_unix: now_unix(),
            });
            replay_generation = Some(generation);
        }
        // Rows as `/metrics` counts them: the replay ids are not analytics.
        let mut rows = batch
            .iter()
            .filter(|write| !matches!(write, Write::SeenInteractions { .. }))
            .count() as u64;
        let result = if batch.is_empty() {
            Ok(())
        } else {
            // A panicking store loses this batch (counted as dropped); the writer lives on.
            match AssertUnwindSafe(store.write_batch(&batch))
                .catch_unwind()
                .await
            {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!(
                        rows = batch.len(),
                        "a storage batch write panicked; its rows are dropped"
                    );
                    counters.dropped.fetch_add(rows, Ordering::Relaxed);
                    batch.clear();
                    rows = 0;
                    Ok(())
                }
            }
        };
        match result {
            Ok(()) => {
                counters.written.fetch_add(rows, Ordering::Relaxed);
                batch.clear();
                if let (Some(memory), Some(generation)) = (&replay, replay_generation.take()) {
                    memory.committed(generation);
                }
                for done in flushes.drain(..) {
                    let _ = done.send(());
                }
                if failing {
                    tracing::info!("storage writes succeed again; the queued writes are stored");
                    failing = false;
                }
                backoff = options.batch_interval.max(Duration::from_millis(10));
            }
            Err(error) => {
                counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                if !failing {
                    tracing::warn!(%error, rows = batch.len(), "storage writes failing; kept in the queue and retried");
                    failing = true;
                }
                if closed {
                    tracing::warn!(rows = batch.len(), "the storage queue closed while the database was failing; these writes are lost");
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
            }
        }
        if closed && batch.is_empty() {
            return;
        }
    }
}
