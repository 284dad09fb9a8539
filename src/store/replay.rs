//! The replay check of the one-process SQLite store, answered from memory ([`ReplayMemory`]).
//!
//! Every signed interaction's id is checked before its command runs. With PostgreSQL (shared by
//! replicas) that is a round trip to the database; with SQLite, which serves one process, this
//! process's memory is as good a witness, and the durable insert can wait for the batching writer
//! instead of holding the request on the SQLite thread (a WAL write and a thread hand-off per
//! request: about 15% of the server's CPU before).
//!
//! **What is kept.** Discord's interaction ids are snowflakes: `(ms since 2015-01-01) << 22 | 22
//! low bits`. Ids are kept in buckets by the second of their embedded time, each id as a `u32`
//! (the millisecond within the second in 10 bits and the 22 low bits) in a sorted vector: 4 bytes
//! an id, exact (no false positive, no false negative). Memory answers for ids whose time lies
//! between a floor, about [`REPLAY_MEMORY_BEHIND`] (10 s) before now, and [`REPLAY_MEMORY_AHEAD`]
//! (a minute) after now; at 7,000 requests a second it holds about 70,000 ids, 280 KB. (Reaching a
//! minute back, the soak held up to 282,000 ids and RSS reached 30.7 MB, over the 30 MB target.)
//!
//! **Everything else asks the store, as before.** An id that is not a canonical decimal number,
//! whose time is older than the floor (a replay of a request more than 10 s old: the signature
//! window allows five minutes), or more than a minute in the future, goes to the store's synchronous
//! [`Store::first_sighting`](super::Store::first_sighting), which remembers ids for a day. So
//! memory only ever *adds* an answer for fresh ids; it never weakens what the store refused before.
//!
//! **Why the answers stay exact.**
//! - Each id memory accepts is queued (in memory, not in the lossy write queue) for the writer,
//!   which commits it with its next batch. A bucket that falls below the floor is dropped only
//!   once the writer has committed every id queued while the bucket was last added to (its
//!   generation), so an id leaves memory only after it is in SQLite, where the store path finds it.
//! - An id up to [`FUTURE_REMEMBERED`] ahead of the memory's reach is checked in the store *and*
//!   added to memory first, so when the clock catches up with it memory already knows it; ids
//!   further ahead still are the store's alone, and reach memory's range only after the store has
//!   forgotten them (as it forgets every id after a day).
//! - On start, memory holds nothing: until the ids the store holds for memory's range are loaded
//!   ([`ReplayMemory::load`]), every check asks the store and is added to memory as well.
//!
//! **What a crash loses.** Ids accepted but not yet committed: those of the last batch interval
//! (50 ms) and the commit in progress, or everything since the database started failing (at most
//! [`PENDING_CAP`] ids). After a restart, a replay of one of those within the signature window is
//! accepted once. A clean shutdown commits them (the writer drains).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds: a snowflake's time counts from it.
pub const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// How far behind the clock an id's time may be and still be answered from memory; older ids are
/// checked in the store. Real interactions reach the endpoint well within a second of their
/// creation (Discord wants an answer within 3 s); 10 s also absorbs some clock drift between
/// Discord and this host (with more, fresh ids are checked in the store: correct, as slow as
/// before; `guidebot_replay_checks_total{answered_by="store"}` shows it). What memory holds is
/// the request rate times this.
pub const REPLAY_MEMORY_BEHIND: Duration = Duration::from_secs(10);
/// How far ahead of the clock an id's time may be and still be answered from memory (costs no
/// memory without clock drift: no id is made in the future).
pub const REPLAY_MEMORY_AHEAD: Duration = Duration::from_secs(60);
/// How far beyond [`REPLAY_MEMORY_AHEAD`] an id checked in the store is also remembered in memory,
/// so that memory knows it once the clock catches up: twice the store's day, so an id further
/// ahead reaches memory's range only after the store's retention has dropped it anyway.
pub const FUTURE_REMEMBERED: Duration = Duration::from_secs(2 * 86_400);
/// Accepted ids waiting for the writer at most. Past it (a database failing for about half a
/// minute at 7,000 requests a second: 2 MB) new ids are still refused when replayed within
/// [`REPLAY_MEMORY_BEHIND`], but are not written: the store path would not know them later.
pub const PENDING_CAP: usize = 250_000;

/// What memory says about an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First sighting: memory recorded it and queued it for the writer.
    New,
    /// Seen before.
    Replay,
    /// Memory cannot answer for this id: ask the store (which records it).
    AskStore,
}

/// A canonical decimal `u64` (no sign, no leading zero): the only ids memory answers for, so that
/// one id has one spelling (the store keeps the text it was given).
pub fn parse_snowflake(id: &str) -> Option<u64> {
    let canonical = !id.is_empty()
        && id.bytes().all(|byte| byte.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    canonical.then(|| id.parse().ok()).flatten()
}

/// A snowflake's embedded time in Unix seconds, and its key within that second's bucket.
pub fn bucket_of(id: u64) -> (i64, u32) {
    let unix_ms = (id >> 22) as i64 + DISCORD_EPOCH_MS;
    let second = unix_ms.div_euclid(1000);
    let millis = unix_ms.rem_euclid(1000) as u32;
    (second, (millis << 22) | (id & 0x3F_FFFF) as u32)
}

/// The smallest snowflake whose time is at or after Unix second `second` (0 before the epoch).
pub fn first_id_of(second: i64) -> u64 {
    let since_epoch = second.saturating_mul(1000).saturating_sub(DISCORD_EPOCH_MS);
    (since_epoch.clamp(0, (u64::MAX >> 22) as i64) as u64) << 22
}

/// One second's ids.
#[derive(Default)]
struct Bucket {
    /// Keys ([`bucket_of`]), sorted: ids of one second arrive nearly in order, so an insert is an
    /// append or a short move.
    keys: Vec<u32>,
    /// The pending generation holding this bucket's newest unwritten id (0: none).
    generation: u64,
    /// Trimmed to its length since the last insert.
    trimmed: bool,
}

struct State {
    /// By the Unix second of the ids' embedded time.
    buckets: BTreeMap<i64, Bucket>,
    /// The oldest second memory answers for; it only moves forward.
    floor: i64,
    /// The ids the store held for memory's range are in memory.
    loaded: bool,
    /// Ids accepted from memory, not yet taken by the writer.
    pending: Vec<u64>,
    /// The generation `pending` will be written as (starts at 1).
    pending_generation: u64,
    /// Every generation up to this one is committed (or was given up).
    committed_generation: u64,
    /// Ids taken by the writer and not yet committed.
    in_flight: usize,
    /// Keys held, for `/metrics`.
    held: usize,
    /// Ids accepted but not queued for the writer because [`PENDING_CAP`] was reached.
    unqueued: u64,
    /// The last second the buckets were swept at.
    swept_at: i64,
}

/// The in-memory replay check (see the module documentation). Shared by the request path and
/// the storage writer.
pub struct ReplayMemory {
    state: Mutex<State>,
    /// Wakes the writer when ids start waiting.
    wake: Notify,
    /// Becomes true once the store's ids are loaded.
    loaded: watch::Sender<bool>,
}

impl ReplayMemory {
    /// An empty memory at `now_unix`, not loaded yet: every check asks the store until
    /// [`ReplayMemory::load`] is called.
    pub fn new(now_unix: i64) -> ReplayMemory {
        let behind = REPLAY_MEMORY_BEHIND.as_secs() as i64;
        ReplayMemory {
            state: Mutex::new(State {
                buckets: BTreeMap::new(),
                floor: now_unix - behind,
                loaded: false,
                pending: Vec::new(),
                pending_generation: 1,
                committed_generation: 0,
                in_flight: 0,
                held: 0,
                unqueued: 0,
                swept_at: now_unix,
            }),
            wake: Notify::new(),
            loaded: watch::Sender::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned lock still holds consistent state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks `id` at `now_unix`: [`Verdict::New`] records it (and queues it for the writer),
    /// [`Verdict::Replay`] means it was seen, [`Verdict::AskStore`] leaves it to the store (having
    /// remembered it first when memory will answer for it later).
    pub fn check(&self, id: &str, now_unix: i64) -> Verdict {
        let Some(id) = parse_snowflake(id) else {
            return Verdict::AskStore;
        };
        let (second, key) = bucket_of(id);
        let ahead = now_unix.saturating_add(REPLAY_MEMORY_AHEAD.as_secs() as i64);
        let remembered_until = ahead.saturating_add(FUTURE_REMEMBERED.as_secs() as i64);
        let mut state = self.state();
        state.sweep(now_unix);
        if second < state.floor || second > remembered_until {
            return Verdict::AskStore;
        }
        let answers = state.loaded && second <= ahead;
        let State {
            buckets,
            pending,
            pending_generation,
            in_flight,
            held,
            unqueued,
            ..
        } = &mut *state;
        let bucket = buckets.entry(second).or_default();
        let Err(at) = bucket.keys.binary_search(&key) else {
            return Verdict::Replay;
        };
        bucket.keys.insert(at, key);
        bucket.trimmed = false;
        *held += 1;
        if !answers {
            // The store answers (and writes the id itself); memory keeps it for later.
            return Verdict::AskStore;
        }
        if pending.len() + *in_flight < PENDING_CAP {
            if pending.is_empty() {
                self.wake.notify_one();
            }
            pending.push(id);
            bucket.generation = *pending_generation;
        } else {
            *unqueued += 1;
        }
        Verdict::New
    }

    /// The ids accepted since the last call, with their generation, for the writer to commit
    /// (then [`ReplayMemory::committed`]); `None` when there are none.
    pub fn take_pending(&self) -> Option<(u64, Vec<u64>)> {
        let mut state = self.state();
        if state.pending.is_empty() {
            return None;
        }
        let ids = std::mem::take(&mut state.pending);
        let generation = state.pending_generation;
        state.pending_generation += 1;
        state.in_flight += ids.len();
        Some((generation, ids))
    }

    /// Every generation up to `generation` is in the store (or was given up after a panic), and
    /// no taken id is waiting any more: their buckets may leave memory.
    pub fn committed(&self, generation: u64) {
        let mut state = self.state();
        state.committed_generation = state.committed_generation.max(generation);
        state.in_flight = 0;
    }

    /// Waits until ids are waiting for the writer (returns at once when some arrived since the
    /// last wait).
    pub async fn pending_ids(&self) {
        self.wake.notified().await
    }

    /// The ids to read from the store before memory can answer: every id from the floor to as
    /// far ahead as memory remembers (inclusive bounds).
    pub fn range_to_load(&self, now_unix: i64) -> (u64, u64) {
        let floor = self.state().floor;
        let last = now_unix
            .saturating_add(REPLAY_MEMORY_AHEAD.as_secs() as i64)
            .saturating_add(FUTURE_REMEMBERED.as_secs() as i64);
        (
            first_id_of(floor),
            first_id_of(last.saturating_add(1)).saturating_sub(1),
        )
    }

    /// Adds the ids the store holds (read with [`ReplayMemory::range_to_load`]) and starts
    /// answering from memory.
    pub fn load(&self, ids: impl IntoIterator<Item = u64>, now_unix: i64) {
        let last = now_unix
            .saturating_add(REPLAY_MEMORY_AHEAD.as_secs() as i64)
            .saturating_add(FUTURE_REMEMBERED.as_secs() as i64);
        let mut state = self.state();
        let floor = state.floor;
        let mut added = 0;
        for id in ids {
            let (second, key) = bucket_of(id);
            if second < floor || second > last {
                continue;
            }
            let bucket = state.buckets.entry(second).or_default();
            if let Err(at) = bucket.keys.binary_search(&key) {
                bucket.keys.insert(at, key);
                bucket.trimmed = false;
                added += 1;
            }
        }
        state.held += added;
        state.loaded = true;
        drop(state);
        self.loaded.send_replace(true);
    }

    /// Whether memory answers yet (the store's ids are loaded).
    pub fn is_loaded(&self) -> bool {
        *self.loaded.borrow()
    }

    /// Waits until memory answers (the store's ids are loaded).
    pub async fn wait_loaded(&self) {
        let mut loaded = self.loaded.subscribe();
        // The sender lives as long as `self`, so this only ends once loaded.
        let _ = loaded.wait_for(|loaded| *loaded).await;
    }

    /// Ids held in memory now.
    pub fn held(&self) -> usize {
        self.state().held
    }

    /// Ids accepted but never queued for the writer ([`PENDING_CAP`] reached).
    pub fn unqueued(&self) -> u64 {
        self.state().unqueued
    }
}

impl State {
    /// Once a second: drops the buckets below `now - REPLAY_MEMORY_BEHIND` whose ids are all
    /// committed (stopping at the first that is not), raises the floor to match, and trims
    /// buckets whose second is over to their length.
    fn sweep(&mut self, now_unix: i64) {
        if now_unix <= self.swept_at {
            return;
        }
        self.swept_at = now_unix;
        let target = now_unix - REPLAY_MEMORY_BEHIND.as_secs() as i64;
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() >= target || entry.get().generation > self.committed_generation {
                break;
            }
            self.held -= entry.remove().keys.len();
        }
        let oldest = self
            .buckets
            .first_key_value()
            .map_or(target, |(second, _)| *second);
        self.floor = self.floor.max(target.min(oldest));
        for (_, bucket) in self.buckets.range_mut(..now_unix - 1) {
            if !bucket.trimmed {
                bucket.keys.shrink_to_fit();
                bucket.trimmed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snowflake made at Unix second `second` plus `millis`, with low bits `low`.
    fn id_at(second: i64, millis: i64, low: u64) -> u64 {
        (((second * 1000 + millis - DISCORD_EPOCH_MS) as u64) << 22) | low
    }

    #[test]
    fn only_canonical_decimal_ids_are_read() {
        assert_eq!(parse_snowflake("1234"), Some(1234));
        assert_eq!(parse_snowflake("0"), Some(0));
        for odd in [
            "",
            "01234",
            "+1234",
            "12a4",
            "-1",
            "18446744073709551616",
            " 1",
        ] {
            assert_eq!(parse_snowflake(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn a_snowflake_splits_into_its_second_and_a_key() {
        let id = id_at(1_800_000_000, 999, 0x3F_FFFF);
        assert_eq!(bucket_of(id), (1_800_000_000, (999 << 22) | 0x3F_FFFF));
        assert_eq!(bucket_of(id_at(1_800_000_000, 0, 5)).1, 5);
        assert_eq!(first_id_of(1_800_000_000), id_at(1_800_000_000, 0, 0));
        assert_eq!(first_id_of(0), 0, "before Discord's epoch");
    }

    #[test]
    fn memory_answers_once_loaded_and_a_bucket_leaves_only_once_committed() {
        let now = 1_800_000_000;
        let memory = ReplayMemory::new(now);
        let id = id_at(now, 10, 1).to_string();
        assert_eq!(memory.check(&id, now), Verdict::AskStore, "not loaded yet");
        assert_eq!(memory.check(&id, now), Verdict::Replay, "but remembered");
        memory.load([], now);
        let fresh = id_at(now, 11, 1).to_string();
        assert_eq!(memory.check(&fresh, now), Verdict::New);
        assert_eq!(memory.check(&fresh, now), Verdict::Replay);
        // Past the floor but not committed: still answered from memory.
        let later = now + REPLAY_MEMORY_BEHIND.as_secs() as i64 + 5;
        assert_eq!(memory.check(&fresh, later), Verdict::Replay);
        let (generation, ids) = memory.take_pending().expect("one id waits");
        assert_eq!(ids, vec![id_at(now, 11, 1)]);
        memory.committed(generation);
        // Committed: the next sweep drops the bucket and the store answers.
        assert_eq!(memory.check(&fresh, later + 1), Verdict::AskStore);
        assert_eq!(memory.held(), 0);
    }
}
