//! Conversations: the recent turns of a thread or a reply chain, so a follow-up ("and at Meta?")
//! is read with the question before it. History sits behind [`ConversationHistory`]:
//! [`StoreHistory`] keeps it in the shared store (every replica reads the same turns, and they
//! survive restarts); [`MemoryHistory`] is the bounded in-memory one used without a store.

use crate::engine::PriorTurn;
use crate::store::{hash_id, Storage, Store, StoreError};
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::store::ConversationKey;

/// How much history a follow-up sees: the last `turns` exchanges no older than `max_age`. Short
/// on purpose: long histories make answers drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    pub turns: usize,
    pub max_age: Duration,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            turns: 3,
            max_age: Duration::from_secs(30 * 60),
        }
    }
}

/// History could not be read or written; the dispatcher logs it and answers without history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("conversation history unavailable: {0}")]
    Unavailable(String),
}

/// What every [`ConversationHistory`] method returns: a boxed future of the value, or why history
/// is unavailable.
pub type HistoryCall<'a, T> = BoxFuture<'a, Result<T, HistoryError>>;

/// Keeps conversations. Async (boxed futures) so a database-backed implementation fits; every
/// method takes the current time so tests and stores agree on ages.
pub trait ConversationHistory: Send + Sync {
    /// The turns of `key` within the limits, oldest first.
    fn recent(&self, key: ConversationKey, now_unix: i64) -> HistoryCall<'_, Vec<PriorTurn>>;
    /// Appends a turn to `key` (older turns past the limits may be dropped).
    fn record(&self, key: ConversationKey, turn: PriorTurn, now_unix: i64) -> HistoryCall<'_, ()>;
    /// Remembers that `message_id` (an answer the bot posted) belongs to `key`, so a reply to it
    /// continues the conversation.
    fn link(&self, message_id: u64, key: ConversationKey, now_unix: i64) -> HistoryCall<'_, ()>;
    /// The conversation a message belongs to, if it was linked and is not too old.
    fn conversation_of(
        &self,
        message_id: u64,
        now_unix: i64,
    ) -> HistoryCall<'_, Option<ConversationKey>>;
    /// Whether `channel_id` is a thread the bot answered in within [`THREAD_MEMORY`].
    fn is_bot_thread(&self, channel_id: u64, now_unix: i64) -> HistoryCall<'_, bool>;
}

/// How long a thread the bot answered in stays one where messages are follow-ups (Discord's
/// default auto-archive is a day).
pub const THREAD_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Most conversations (and linked messages) kept in memory; the oldest go first.
pub const MEMORY_CONVERSATIONS: usize = 10_000;

#[derive(Debug, Default)]
struct Conversation {
    turns: VecDeque<(i64, PriorTurn)>,
    last_at: i64,
}

#[derive(Debug, Default)]
struct MemoryState {
    conversations: HashMap<ConversationKey, Conversation>,
    links: HashMap<u64, (ConversationKey, i64)>,
}

/// History in this process's memory: the last turns of each conversation, at most
/// [`MEMORY_CONVERSATIONS`] conversations; lost on restart (a follow-up then reads as a first
/// question).
#[derive(Debug, Default)]
pub struct MemoryHistory {
    limits: HistoryLimits,
    state: Mutex<MemoryState>,
}

impl MemoryHistory {
    /// Empty history with these limits.
    pub fn new(limits: HistoryLimits) -> Self {
        MemoryHistory {
            limits,
            state: Mutex::new(MemoryState::default()),
        }
    }

    /// Runs `work` on the state, as the answer of a history call (at once: nothing to wait for).
    fn with_state<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut MemoryState) -> T,
    ) -> HistoryCall<'static, T> {
        let state = self.state.lock();
        let poisoned = |_| HistoryError::Unavailable("the history lock was poisoned".to_string());
        let result = state.map(|mut state| work(&mut state)).map_err(poisoned);
        Box::pin(std::future::ready(result))
    }
}

/// The oldest time, in Unix seconds, that is within `age` of `now_unix`.
fn oldest_within(now_unix: i64, age: Duration) -> i64 {
    now_unix.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))
}

impl HistoryLimits {
    /// The turns kept per conversation (at least one).
    fn kept_turns(&self) -> usize {
        self.turns.max(1)
    }
}

/// Drops the oldest entries of `map` beyond `cap`, by the timestamp `at` reads.
fn evict<K: Copy + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    at: impl Fn(&V) -> i64,
) {
    if map.len() <= cap {
        return;
    }
    let mut ages: Vec<(i64, K)> = map.iter().map(|(key, value)| (at(value), *key)).collect();
    ages.sort_by_key(|(at, _)| *at);
    let excess = map.len() - cap;
    for (_, key) in ages.into_iter().take(excess) {
        map.remove(&key);
    }
}

impl ConversationHistory for MemoryHistory {
    fn recent(&self, key: ConversationKey, now_unix: i64) -> HistoryCall<'_, Vec<PriorTurn>> {
        let oldest = oldest_within(now_unix, self.limits.max_age);
        self.with_state(move |state| {
            let turns = state
                .conversations
                .get(&key)
                .map(|conversation| &conversation.turns);
            let recent = turns.into_iter().flatten().filter(|(at, _)| *at >= oldest);
            recent.map(|(_, turn)| turn.clone()).collect()
        })
    }

    fn record(&self, key: ConversationKey, turn: PriorTurn, now_unix: i64) -> HistoryCall<'_, ()> {
        let keep = self.limits.kept_turns();
        self.with_state(move |state| {
            let conversation = state.conversations.entry(key).or_default();
            conversation.turns.push_back((now_unix, turn));
            while conversation.turns.len() > keep {
                conversation.turns.pop_front();
            }
            conversation.last_at = now_unix;
            evict(
                &mut state.conversations,
                MEMORY_CONVERSATIONS,
                |conversation| conversation.last_at,
            );
        })
    }

    fn link(&self, message_id: u64, key: ConversationKey, now_unix: i64) -> HistoryCall<'_, ()> {
        self.with_state(move |state| {
            state.links.insert(message_id, (key, now_unix));
            evict(&mut state.links, MEMORY_CONVERSATIONS, |(_, at)| *at);
        })
    }

    fn conversation_of(
        &self,
        message_id: u64,
        now_unix: i64,
    ) -> HistoryCall<'_, Option<ConversationKey>> {
        let oldest = oldest_within(now_unix, THREAD_MEMORY);
        self.with_state(move |state| {
            let link = state.links.get(&message_id).filter(|(_, at)| *at >= oldest);
            link.map(|(key, _)| *key)
        })
    }

    fn is_bot_thread(&self, channel_id: u64, now_unix: i64) -> HistoryCall<'_, bool> {
        let oldest = oldest_within(now_unix, THREAD_MEMORY);
        self.with_state(move |state| {
            let thread = state
                .conversations
                .get(&ConversationKey::Thread(channel_id));
            thread.is_some_and(|conversation| conversation.last_at >= oldest)
        })
    }
}

/// Longest wait for one history call to the store: past it the question is answered without
/// history (an HTTP interaction must be answered within Discord's 3 seconds).
pub const STORE_HISTORY_TIMEOUT: Duration = Duration::from_secs(1);

/// History in the shared store ([`Storage`]'s database): turns, message links and the threads
/// the bot answered in are rows, so every replica sharing the database reads one conversation,
/// and it survives restarts. Each turn is committed before the answer is shown. Conversations and
/// messages are stored under salted hashes of their ids; a link keeps the conversation's own id
/// (a thread, or the first question's message) so a reply leads back to it. Rows go with the
/// analytics' retention. The store is the only truth: nothing is cached in this process.
pub struct StoreHistory {
    storage: Arc<Storage>,
    limits: HistoryLimits,
    salt: String,
    timeout: Duration,
}

impl StoreHistory {
    /// History in `storage`'s database with these limits; ids are hashed with `salt`.
    pub fn new(storage: Arc<Storage>, limits: HistoryLimits, salt: &str) -> Self {
        StoreHistory {
            storage,
            limits,
            salt: salt.to_string(),
            timeout: STORE_HISTORY_TIMEOUT,
        }
    }

    /// How a conversation is named in the store: its kind and the salted hash of its id.
    fn conversation(&self, key: ConversationKey) -> String {
        format!("{}:{}", key.kind(), hash_id(&self.salt, key.id()))
    }

    /// Runs `work` on the store, bounded by the timeout; a database that is not ready (still
    /// connecting), fails or is slow makes it [`HistoryError::Unavailable`].
    fn call<'a, T: Send + 'a, F>(
        &'a self,
        work: impl FnOnce(&'a dyn Store) -> F,
    ) -> HistoryCall<'a, T>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'a,
    {
        let store = self.storage.store().as_ref();
        let ready = self.storage.readiness().map(|()| work(store));
        Box::pin(async move {
            let work = ready.map_err(HistoryError::Unavailable)?;
            match tokio::time::timeout(self.timeout, work).await {
                Ok(result) => result.map_err(|error| HistoryError::Unavailable(error.to_string())),
                Err(_) => Err(HistoryError::Unavailable(format!(
                    "the store did not answer within {} ms",
                    self.timeout.as_millis()
                ))),
            }
        })
    }
}

impl ConversationHistory for StoreHistory {
    fn recent(&self, key: ConversationKey, now_unix: i64) -> HistoryCall<'_, Vec<PriorTurn>> {
        let oldest = oldest_within(now_unix, self.limits.max_age);
        let (conversation, turns) = (self.conversation(key), self.limits.kept_turns());
        self.call(move |store| async move {
            store.conversation_turns(&conversation, turns, oldest).await
        })
    }

    fn record(&self, key: ConversationKey, turn: PriorTurn, now_unix: i64) -> HistoryCall<'_, ()> {
        let (conversation, keep) = (self.conversation(key), self.limits.kept_turns());
        self.call(move |store| async move {
            store
                .record_turn(&conversation, &turn, now_unix, keep)
                .await
        })
    }

    fn link(&self, message_id: u64, key: ConversationKey, now_unix: i64) -> HistoryCall<'_, ()> {
        let message = hash_id(&self.salt, message_id);
        self.call(move |store| async move { store.link_message(&message, key, now_unix).await })
    }

    fn conversation_of(
        &self,
        message_id: u64,
        now_unix: i64,
    ) -> HistoryCall<'_, Option<ConversationKey>> {
        let message = hash_id(&self.salt, message_id);
        let oldest = oldest_within(now_unix, THREAD_MEMORY);
        self.call(move |store| async move { store.linked_conversation(&message, oldest).await })
    }

    fn is_bot_thread(&self, channel_id: u64, now_unix: i64) -> HistoryCall<'_, bool> {
        let conversation = self.conversation(ConversationKey::Thread(channel_id));
        let oldest = oldest_within(now_unix, THREAD_MEMORY);
        self.call(move |store| async move {
            store.conversation_active_since(&conversation, oldest).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(question: &str) -> PriorTurn {
        PriorTurn {
            question: question.to_string(),
            standalone: question.to_string(),
            answer: format!("answer to {question}"),
        }
    }

    #[tokio::test]
    async fn history_keeps_the_last_turns_within_the_age_limit() {
        let history = MemoryHistory::new(HistoryLimits {
            turns: 2,
            max_age: Duration::from_secs(600),
        });
        let key = ConversationKey::Thread(7);
        for (at, question) in [(0, "one"), (100, "two"), (200, "three")] {
            history.record(key, turn(question), at).await.unwrap();
        }
        let recent = history.recent(key, 300).await.unwrap();
        let questions: Vec<&str> = recent.iter().map(|t| t.question.as_str()).collect();
        assert_eq!(questions, ["two", "three"]);
        // Past the age limit the turns no longer count, but the thread is still the bot's.
        assert!(history.recent(key, 10_000).await.unwrap().is_empty());
        assert!(history.is_bot_thread(7, 10_000).await.unwrap());
        assert!(!history.is_bot_thread(8, 10_000).await.unwrap());
        assert!(history
            .recent(ConversationKey::Chain(7), 300)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn linked_answers_lead_back_to_their_conversation() {
        let history = MemoryHistory::new(HistoryLimits::default());
        history
            .link(55, ConversationKey::Chain(50), 0)
            .await
            .unwrap();
        assert_eq!(
            history.conversation_of(55, 10).await.unwrap(),
            Some(ConversationKey::Chain(50))
        );
        assert_eq!(history.conversation_of(56, 10).await.unwrap(), None);
    }
}
