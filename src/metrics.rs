//! Prometheus metrics shared by both transports: requests by command and outcome, latency
//! histograms, LLM tokens and errors, refusals, the index fingerprint and HTTP rejections.
//!
//! Floor 0: a Prometheus registry with typed methods, knowing nothing of Discord, the engine or
//! HTTP. The bot turns its interaction reports into these calls (`bot::report`); the transports
//! serve [`Metrics::encode`] on `/metrics`.
//!
//! Names (all counters end in `_total` in the exposition):
//! - `guidebot_requests_total{command,outcome}`
//! - `guidebot_request_seconds{command}`: dispatcher time, from the interaction to its last reply
//! - `guidebot_retrieval_seconds`: answers and searches that did not call the LLM (retrieval,
//!   extractive answer and rendering; what a quick reply costs)
//! - `guidebot_llm_seconds`: deferred LLM answers, from the interaction to the final edit
//! - `guidebot_verify_seconds`: Ed25519 signature checks (HTTP mode)
//! - `guidebot_llm_tokens_total{direction="input"|"output"}`
//! - `guidebot_llm_errors_total{reason="llm_failed"|"ungrounded"|"over_budget"|"store_unavailable"}`
//! - `guidebot_llm_throttled_total`: answers that fell back to extractive because of the cooldown
//! - `guidebot_refusals_total{command}`
//! - `guidebot_handler_panics_total{command}`: handlers that panicked (answered with an apology)
//! - `guidebot_index_info{fingerprint}` = 1 for the index being served
//! - `guidebot_http_rejections_total{reason="bad_signature"|"stale"|"replayed"|"too_large"|"malformed"|"unknown_type"}`
//! - `guidebot_store_writes_total{outcome="written"|"dropped"}`: analytics, feedback, token and
//!   cache writes committed by the storage writer, or dropped because its queue was full (dropped
//!   also counts replay ids accepted from memory but not queued, past the writer's cap)
//! - `guidebot_store_failed_batches_total`: write batches that failed (kept and retried)
//! - `guidebot_store_reopened_total`: times the SQLite file was found removed or replaced while
//!   serving and opened again
//! - `guidebot_replay_checks_total{answered_by="memory"|"store"}`: interaction ids checked against
//!   replays, by what answered (memory: SQLite's in-memory check of fresh ids)
//! - `guidebot_replay_ids_in_memory`: interaction ids the in-memory replay check holds
//! - `guidebot_store_unavailable`: 1 while the configured store cannot be used (not opened at
//!   start, not connected, or its last 3 calls failed), 0 otherwise or without a store
//! - `guidebot_http_replay_ids`: interaction ids the HTTP endpoint remembers against replays, with
//!   or without a store (`transport::replay`)

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type HistogramFamily = Family<Labels1, Histogram, fn() -> Histogram>;
/// Reads the fingerprint of the index being served, at each encode.
type FingerprintSource = Box<dyn Fn() -> String + Send + Sync>;

/// The content type of the OpenMetrics text exposition that [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets: 100 µs to ~52 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// Every metric guidebot exports, in one registry. Cheap to update from any thread.
pub struct Metrics {
    follow_ups: Family<Labels1, Counter>,
    escalations: Counter,
    registry: Registry,
    requests: Family<Labels2, Counter>,
    request_seconds: HistogramFamily,
    retrieval_seconds: Histogram,
    llm_seconds: Histogram,
    verify_seconds: Histogram,
    llm_tokens: Family<Labels1, Counter>,
    llm_errors: Family<Labels1, Counter>,
    llm_throttled: Counter,
    refusals: Family<Labels1, Counter>,
    panics: Family<Labels1, Counter>,
    index_info: Family<[(&'static str, String); 1], Gauge>,
    index_fingerprint: Mutex<String>,
    fingerprint_source: OnceLock<FingerprintSource>,
    http_rejections: Family<Labels1, Counter>,
    reloads: Family<Labels1, Counter>,
    /// Reads (successes, failures) of live reloads so far; see [`Metrics::follow_reloads`].
    reload_source: OnceLock<ReloadSource>,
    /// What `reloads` has counted so far, to add only the difference at each encode.
    reloads_counted: Mutex<(u64, u64)>,
    store_writes: Family<Labels1, Counter>,
    store_failed_batches: Counter,
    store_reopened: Counter,
    /// Reads (written, dropped, failed batches) of the storage writer; see [`Metrics::follow_storage`].
    storage_source: OnceLock<StorageSource>,
    /// What the storage counters have counted so far.
    storage_counted: Mutex<StorageFigures>,
    replay_checks: Family<Labels1, Counter>,
    replay_ids_in_memory: Gauge,
    http_replay_ids: Gauge,
    store_unavailable: Gauge,
}

type StorageSource = Box<dyn Fn() -> StorageFigures + Send + Sync>;

/// What the storage reports to `/metrics` (counters only grow; the ids in memory come and go).
/// A plain struct so this floor-0 module needs nothing from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageFigures {
    /// Writes committed by the batching writer.
    pub written: u64,
    /// Writes dropped (full queue, or replay ids past the writer's cap).
    pub dropped: u64,
    /// Write batches that failed (each is retried).
    pub failed_batches: u64,
    /// Times the SQLite file was opened again after being removed or replaced.
    pub reopened: u64,
    /// Replay checks answered from memory.
    pub replay_from_memory: u64,
    /// Replay checks answered by the store.
    pub replay_from_store: u64,
    /// Interaction ids the in-memory replay check holds now.
    pub replay_ids_in_memory: u64,
    /// The store cannot be used now: not connected yet, or its last calls failed.
    pub unavailable: bool,
}

type ReloadSource = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered and nothing counted yet.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("guidebot");
        let requests = Family::<Labels2, Counter>::default();
        registry.register(
            "requests",
            "Interactions handled, by command and outcome",
            requests.clone(),
        );
        let request_seconds = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register(
            "request_seconds",
            "Time from an interaction to its last reply, by command",
            request_seconds.clone(),
        );
        let retrieval_seconds = latency_histogram();
        registry.register(
            "retrieval_seconds",
            "Time of answers and searches served without the LLM",
            retrieval_seconds.clone(),
        );
        let llm_seconds = latency_histogram();
        registry.register(
            "llm_seconds",
            "Time of deferred LLM answers, from the interaction to the final edit",
            llm_seconds.clone(),
        );
        let verify_seconds = latency_histogram();
        registry.register(
            "verify_seconds",
            "Time to verify an interaction's Ed25519 signature",
            verify_seconds.clone(),
        );
        let llm_tokens = Family::<Labels1, Counter>::default();
        registry.register(
            "llm_tokens",
            "LLM tokens used, by direction: input (all prompt tokens; input_cached of them read from the provider's prompt cache, input_uncached the rest) or output",
            llm_tokens.clone(),
        );
        let llm_errors = Family::<Labels1, Counter>::default();
        registry.register(
            "llm_errors",
            "LLM answers replaced by the extractive one, by reason",
            llm_errors.clone(),
        );
        let llm_throttled = Counter::default();
        registry.register(
            "llm_throttled",
            "Answers served extractively because the user's LLM cooldown was running",
            llm_throttled.clone(),
        );
        let refusals = Family::<Labels1, Counter>::default();
        registry.register(
            "refusals",
            "Questions the guides do not cover, by command",
            refusals.clone(),
        );
        let panics = Family::<Labels1, Counter>::default();
        registry.register(
            "handler_panics",
            "Interaction handlers that panicked (the user got a short error message), by command",
            panics.clone(),
        );
        let index_info = Family::<[(&'static str, String); 1], Gauge>::default();
        registry.register(
            "index_info",
            "The fingerprint of the index being served (value 1)",
            index_info.clone(),
        );
        let http_rejections = Family::<Labels1, Counter>::default();
        registry.register(
            "http_rejections",
            "HTTP interaction requests rejected before dispatch, by reason",
            http_rejections.clone(),
        );
        let reloads = Family::<Labels1, Counter>::default();
        registry.register(
            "reloads",
            "Live corpus reloads, by outcome (succeeded: engine swapped; failed: old engine kept)",
            reloads.clone(),
        );
        let store_writes = Family::<Labels1, Counter>::default();
        registry.register(
            "store_writes",
            "Storage writes (analytics, feedback, tokens, cache), by outcome (written, or dropped because the queue was full)",
            store_writes.clone(),
        );
        let store_failed_batches = Counter::default();
        registry.register(
            "store_failed_batches",
            "Storage write batches that failed (the database was unreachable); each is retried",
            store_failed_batches.clone(),
        );
        let store_reopened = Counter::default();
        registry.register(
            "store_reopened",
            "Times the SQLite file was found removed or replaced while serving and opened again",
            store_reopened.clone(),
        );
        let replay_checks = Family::<Labels1, Counter>::default();
        registry.register(
            "replay_checks",
            "Interaction ids checked against replays, by what answered (memory: SQLite's in-memory check of fresh ids; store: the database)",
            replay_checks.clone(),
        );
        let replay_ids_in_memory = Gauge::default();
        registry.register(
            "replay_ids_in_memory",
            "Interaction ids held by the in-memory replay check (SQLite)",
            replay_ids_in_memory.clone(),
        );
        let http_replay_ids = Gauge::default();
        registry.register(
            "http_replay_ids",
            "Interaction ids the HTTP endpoint remembers against replays (with or without a store)",
            http_replay_ids.clone(),
        );
        let store_unavailable = Gauge::default();
        registry.register(
            "store_unavailable",
            "1 while the configured store cannot be used (not opened at start, not connected, or its last 3 calls failed: LLM answers refused while budgets are configured); 0 otherwise or without a store",
            store_unavailable.clone(),
        );
        let follow_ups = Family::<Labels1, Counter>::default();
        registry.register(
            "follow_ups",
            "Questions read with earlier turns of their thread or reply chain, by command",
            follow_ups.clone(),
        );
        let escalations = Counter::default();
        registry.register(
            "escalations",
            "\"Still need help?\" presses that pinged the helper role",
            escalations.clone(),
        );
        Metrics {
            store_writes,
            store_failed_batches,
            store_reopened,
            storage_source: OnceLock::new(),
            storage_counted: Mutex::new(StorageFigures::default()),
            replay_checks,
            replay_ids_in_memory,
            http_replay_ids,
            store_unavailable,
            follow_ups,
            escalations,
            reloads,
            reload_source: OnceLock::new(),
            reloads_counted: Mutex::new((0, 0)),
            registry,
            requests,
            request_seconds,
            retrieval_seconds,
            llm_seconds,
            verify_seconds,
            llm_tokens,
            llm_errors,
            llm_throttled,
            refusals,
            panics,
            index_info,
            index_fingerprint: Mutex::new(String::new()),
            fingerprint_source: OnceLock::new(),
            http_rejections,
        }
    }

    /// Keeps `guidebot_index_info` on what `source` says is served, also after live reloads (read
    /// at each [`Metrics::encode`]). Only the first call has an effect.
    pub fn follow_fingerprint(&self, source: impl Fn() -> String + Send + Sync + 'static) {
        let fingerprint = source();
        let _ = self.fingerprint_source.set(Box::new(source));
        self.set_index_fingerprint(&fingerprint);
    }

    /// Counts live reloads from `source` (successes, failures so far), read at each
    /// [`Metrics::encode`]. Only the first call has an effect.
    pub fn follow_reloads(&self, source: impl Fn() -> (u64, u64) + Send + Sync + 'static) {
        let _ = self.reload_source.set(Box::new(source));
    }

    /// Counts the storage's work from `source` (the writer's counts, file reopenings and replay
    /// checks so far), read at each [`Metrics::encode`]. Only the first call has an effect.
    pub fn follow_storage(&self, source: impl Fn() -> StorageFigures + Send + Sync + 'static) {
        let _ = self.storage_source.set(Box::new(source));
    }

    /// Sets `guidebot_index_info{fingerprint}` to 1 for `fingerprint` (and drops the previous one).
    pub fn set_index_fingerprint(&self, fingerprint: &str) {
        let Ok(mut current) = self.index_fingerprint.lock() else {
            return;
        };
        if *current == fingerprint {
            return;
        }
        self.index_info.clear();
        self.index_info
            .get_or_create(&[("fingerprint", fingerprint.to_string())])
            .set(1);
        *current = fingerprint.to_string();
    }

    /// Records the duration of one signature check.
    pub fn observe_verify(&self, elapsed: Duration) {
        self.verify_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a request rejected before dispatch; `reason` is one of `bad_signature`, `stale`, `replayed`,
    /// `too_large`, `malformed`, `unknown_type`.
    pub fn reject(&self, reason: &'static str) {
        self.http_rejections
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Sets `guidebot_store_unavailable` (the serve wiring calls it when the configured store
    /// could not be opened at start; a running store's state is read at each encode instead).
    pub fn set_store_unavailable(&self, unavailable: bool) {
        self.store_unavailable.set(i64::from(unavailable));
    }

    /// Sets `guidebot_http_replay_ids`: the interaction ids the HTTP endpoint remembers now.
    pub fn set_http_replay_ids(&self, held: usize) {
        self.http_replay_ids
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    /// Counts an interaction the transport answered itself (e.g. PING), without a report.
    pub fn count_request(&self, command: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&[("command", command), ("outcome", outcome)])
            .inc();
    }

    /// The OpenMetrics text exposition of every metric (ends with `# EOF`).
    pub fn encode(&self) -> String {
        if let Some(source) = self.fingerprint_source.get() {
            self.set_index_fingerprint(&source());
        }
        if let Some(source) = self.reload_source.get() {
            let (successes, failures) = source();
            if let Ok(mut counted) = self.reloads_counted.lock() {
                self.reloads
                    .get_or_create(&[("outcome", "succeeded")])
                    .inc_by(successes.saturating_sub(counted.0));
                self.reloads
                    .get_or_create(&[("outcome", "failed")])
                    .inc_by(failures.saturating_sub(counted.1));
                *counted = (successes.max(counted.0), failures.max(counted.1));
            }
        }
        if let Some(source) = self.storage_source.get() {
            let now = source();
            if let Ok(mut counted) = self.storage_counted.lock() {
                let added = |now: u64, before: u64| now.saturating_sub(before);
                self.store_writes
                    .get_or_create(&[("outcome", "written")])
                    .inc_by(added(now.written, counted.written));
                self.store_writes
                    .get_or_create(&[("outcome", "dropped")])
                    .inc_by(added(now.dropped, counted.dropped));
                self.store_failed_batches
                    .inc_by(added(now.failed_batches, counted.failed_batches));
                self.store_reopened
                    .inc_by(added(now.reopened, counted.reopened));
                self.replay_checks
                    .get_or_create(&[("answered_by", "memory")])
                    .inc_by(added(now.replay_from_memory, counted.replay_from_memory));
                self.replay_checks
                    .get_or_create(&[("answered_by", "store")])
                    .inc_by(added(now.replay_from_store, counted.replay_from_store));
                self.replay_ids_in_memory
                    .set(i64::try_from(now.replay_ids_in_memory).unwrap_or(i64::MAX));
                *counted = StorageFigures {
                    written: now.written.max(counted.written),
                    dropped: now.dropped.max(counted.dropped),
                    failed_batches: now.failed_batches.max(counted.failed_batches),
                    reopened: now.reopened.max(counted.reopened),
                    replay_from_memory: now.replay_from_memory.max(counted.replay_from_memory),
                    replay_from_store: now.replay_from_store.max(counted.replay_from_store),
                    replay_ids_in_memory: now.replay_ids_in_memory,
                    unavailable: now.unavailable,
                };
                self.store_unavailable.set(i64::from(now.unavailable));
            }
        }
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Metrics {
    /// Times one request from the interaction to its last reply.
    pub fn observe_request(&self, command: &'static str, elapsed: Duration) {
        self.request_seconds
            .get_or_create(&[("command", command)])
            .observe(elapsed.as_secs_f64());
    }

    /// Times a deferred LLM answer.
    pub fn observe_llm(&self, elapsed: Duration) {
        self.llm_seconds.observe(elapsed.as_secs_f64());
    }

    /// Times an answer or search served without the LLM.
    pub fn observe_retrieval(&self, elapsed: Duration) {
        self.retrieval_seconds.observe(elapsed.as_secs_f64());
    }

    /// Adds LLM tokens (zeros are not recorded).
    pub fn add_llm_tokens(&self, input: u64, output: u64) {
        self.add_llm_tokens_cached(input, 0, output);
    }

    /// Adds LLM tokens, telling the prompt tokens read from the provider's cache
    /// (`input_cached`) from the others (`input_uncached`); `input` counts them all.
    pub fn add_llm_tokens_cached(&self, input: u64, cached_input: u64, output: u64) {
        let cached_input = cached_input.min(input);
        let split = [
            ("input_cached", cached_input),
            ("input_uncached", input - cached_input),
        ];
        for (direction, tokens) in [("input", input), ("output", output)]
            .into_iter()
            .chain(split)
        {
            if tokens > 0 {
                self.llm_tokens
                    .get_or_create(&[("direction", direction)])
                    .inc_by(tokens);
            }
        }
    }

    /// Counts an LLM answer replaced by the extractive one, by reason.
    pub fn count_llm_error(&self, reason: &'static str) {
        self.llm_errors.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts an answer served extractively because of the user's cooldown.
    pub fn count_llm_throttled(&self) {
        self.llm_throttled.inc();
    }

    /// Counts a question the guides do not cover.
    pub fn count_refusal(&self, command: &'static str) {
        self.refusals.get_or_create(&[("command", command)]).inc();
    }

    /// Counts a handler that panicked.
    pub fn count_panic(&self, command: &'static str) {
        self.panics.get_or_create(&[("command", command)]).inc();
    }

    /// Counts a question answered as a follow-up (with its conversation's earlier turns).
    pub fn count_follow_up(&self, command: &'static str) {
        self.follow_ups.get_or_create(&[("command", command)]).inc();
    }

    /// Counts a hand-off to the helper role.
    pub fn count_escalation(&self) {
        self.escalations.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reloads_are_counted_by_outcome() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let metrics = Metrics::new();
        let counts = Arc::new((AtomicU64::new(2), AtomicU64::new(1)));
        let source = Arc::clone(&counts);
        metrics.follow_reloads(move || {
            (
                source.0.load(Ordering::Relaxed),
                source.1.load(Ordering::Relaxed),
            )
        });
        let text = metrics.encode();
        assert!(
            text.contains("guidebot_reloads_total{outcome=\"succeeded\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("guidebot_reloads_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        counts.0.store(3, Ordering::Relaxed);
        let text = metrics.encode();
        assert!(
            text.contains("guidebot_reloads_total{outcome=\"succeeded\"} 3"),
            "{text}"
        );
    }
}
