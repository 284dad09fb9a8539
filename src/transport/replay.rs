//! The HTTP endpoint's own memory of the interaction ids it accepted ([`RecentIds`]): a replayed
//! signed request is dropped whether a store is configured or not, and while the store cannot be
//! read.
//!
//! The store's check ([`crate::bot::Dispatcher::first_sighting`]) is durable and, with
//! PostgreSQL, shared by replicas; it runs first, as before. This memory decides only when the
//! store did not ([`crate::bot::ReplayCheck::NotChecked`]: no store, or a store that cannot be
//! read), so a working store's ids are not held twice (at 7,000 requests a second this memory
//! would fill its cap, about 4 MB, in 14 seconds). The price: while a failing PostgreSQL cannot
//! be read, a replay of an id it accepted before the failure is accepted once; SQLite's own
//! memory of fresh ids (`store::replay`) still answers while its file fails.
//!
//! **How long an id is kept.** A signed request is accepted only while its
//! `X-Signature-Timestamp` is within the replay window of now, and the signature covers the body
//! (and so the id): a copy of one request carries the same timestamp. An id is therefore kept
//! until its request's timestamp plus the window has passed, when a copy would be refused as stale
//! anyway.
//!
//! **Bounded.** At most `capacity` ids are held (about 40 bytes each). When a new id would pass it,
//! the ids whose requests expire first are forgotten, a second at a time, and the endpoint stops
//! accepting requests signed that early: [`Sighting::Forgotten`]. So no replay is ever accepted;
//! at rates where the memory cannot hold the whole window (over `capacity` / 600 requests a second
//! with the default five minutes), only requests that reach the endpoint long after Discord signed
//! them are refused, and Discord wants an answer within 3 seconds of sending one anyway.
//!
//! Ids are kept as numbers: a Discord snowflake as itself, anything else (Discord never sends it)
//! as a 64-bit keyed hash, whose chance of mistaking one id for another is negligible.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;

/// Interaction ids the endpoint holds at most by default: at 40 bytes an id, about 4 MB; a whole
/// five-minute window (both ways) of ids up to about 160 requests a second.
pub const DEFAULT_REMEMBERED_IDS: usize = 100_000;

/// What the memory says about an interaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Not seen before: now remembered.
    New,
    /// Seen before within the window: a replay.
    Replay,
    /// Signed so long ago that ids of its time may have been forgotten to stay within the cap: it
    /// cannot be told from a replay, so it is refused.
    Forgotten,
}

/// The bounded memory of accepted interaction ids (see the module documentation).
#[derive(Debug)]
pub struct RecentIds {
    state: Mutex<State>,
    capacity: usize,
    window_secs: i64,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct State {
    /// Every id held.
    ids: HashSet<u64>,
    /// The ids by the Unix second their request leaves the window (signed time plus window).
    by_expiry: BTreeMap<i64, Vec<u64>>,
    /// Requests expiring at or before this second are refused: ids of theirs were forgotten.
    floor: i64,
}

impl RecentIds {
    /// A memory of at most `capacity` ids for requests accepted within `window` of their signed
    /// time. A `capacity` of 0 remembers nothing and calls every id new: only for load generators
    /// that send the same pre-signed requests again and again (`examples/http_load`);
    /// `guidebot serve` always remembers.
    pub fn new(capacity: usize, window: Duration) -> RecentIds {
        RecentIds {
            state: Mutex::new(State {
                floor: i64::MIN,
                ..State::default()
            }),
            capacity,
            window_secs: i64::try_from(window.as_secs()).unwrap_or(i64::MAX),
            hasher: RandomState::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned lock still holds consistent state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key_of(&self, id: &str) -> u64 {
        match crate::store::parse_snowflake(id) {
            Some(snowflake) => snowflake,
            None => self.hasher.hash_one(id),
        }
    }

    /// Checks interaction `id` of a request signed at Unix second `signed_at` (already within the
    /// window), at `now`, and remembers it when it is new.
    pub fn check(&self, id: &str, signed_at: i64, now: i64) -> Sighting {
        if self.capacity == 0 {
            return Sighting::New;
        }
        let key = self.key_of(id);
        let expires = signed_at.saturating_add(self.window_secs);
        let mut state = self.state();
        // Requests that left the window are refused as stale: their ids need not be kept.
        while let Some(entry) = state.by_expiry.first_entry() {
            if *entry.key() >= now {
                break;
            }
            let gone = entry.remove();
            for key in gone {
                state.ids.remove(&key);
            }
        }
        if state.ids.contains(&key) {
            return Sighting::Replay;
        }
        if expires <= state.floor {
            return Sighting::Forgotten;
        }
        // Make room: forget the ids expiring first, and refuse requests expiring that early from
        // now on. When this request would expire first of all, it is the one not remembered.
        while state.ids.len() >= self.capacity {
            match state.by_expiry.first_key_value() {
                Some((&second, _)) if second < expires => {
                    if let Some((_, gone)) = state.by_expiry.pop_first() {
                        for key in gone {
                            state.ids.remove(&key);
                        }
                    }
                    state.floor = state.floor.max(second);
                }
                _ => {
                    state.floor = state.floor.max(expires);
                    return Sighting::Forgotten;
                }
            }
        }
        state.ids.insert(key);
        state.by_expiry.entry(expires).or_default().push(key);
        Sighting::New
    }

    /// Ids held now.
    pub fn held(&self) -> usize {
        self.state().ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    #[test]
    fn an_id_is_new_once_and_a_replay_until_its_request_leaves_the_window() {
        let now = 1_800_000_000;
        let memory = RecentIds::new(10, WINDOW);
        assert_eq!(memory.check("1234", now, now), Sighting::New);
        assert_eq!(memory.check("1234", now, now + 1), Sighting::Replay);
        assert_eq!(memory.check("not-a-snowflake", now, now), Sighting::New);
        assert_eq!(memory.check("not-a-snowflake", now, now), Sighting::Replay);
        assert_eq!(memory.check("1234", now, now + 300), Sighting::Replay);
        assert_eq!(memory.held(), 2);
        // Past the window the request would be stale: the id is forgotten.
        assert_eq!(memory.check("99", now + 301, now + 301), Sighting::New);
        assert_eq!(memory.held(), 1);
    }

    #[test]
    fn at_the_cap_the_earliest_are_forgotten_and_requests_that_early_are_refused() {
        let now = 1_800_000_000;
        let memory = RecentIds::new(3, WINDOW);
        assert_eq!(memory.check("1", now - 5, now), Sighting::New);
        assert_eq!(memory.check("2", now - 4, now), Sighting::New);
        assert_eq!(memory.check("3", now - 3, now), Sighting::New);
        // Full: "1" (signed earliest) is forgotten to make room.
        assert_eq!(memory.check("4", now, now), Sighting::New);
        assert_eq!(memory.held(), 3);
        // A copy of "1" cannot be told from a new request: refused, never accepted; refusing it
        // forgets nothing more.
        assert_eq!(memory.check("1", now - 5, now), Sighting::Forgotten);
        assert_eq!(memory.check("2", now - 4, now), Sighting::Replay);
        assert_eq!(memory.held(), 3);
        // A new id signed before everything held, with the memory full: not remembered, so
        // refused (as would be a copy of it later).
        assert_eq!(memory.check("5", now - 4, now), Sighting::Forgotten);
        assert_eq!(memory.check("5", now - 4, now), Sighting::Forgotten);
        assert_eq!(memory.check("2", now - 4, now), Sighting::Replay);
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let memory = RecentIds::new(0, WINDOW);
        assert_eq!(memory.check("1", 5, 5), Sighting::New);
        assert_eq!(memory.check("1", 5, 5), Sighting::New);
        assert_eq!(memory.held(), 0);
    }
}
