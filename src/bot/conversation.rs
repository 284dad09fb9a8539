//! Conversations: the recent turns of a thread or a reply chain, so a follow-up ("and at Meta?")
//! is read with the question before it. History sits behind [`ConversationHistory`] so another
//! backend (the shared store) can keep it; [`MemoryHistory`] is the bounded in-memory one.

use crate::engine::PriorTurn;
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Which conversation a message or command belongs to. Threads are keyed by the thread's channel
/// id (every message and `/ask` in it continues it); outside threads, by the first question's
/// message id, with each answer linked to it so a reply to any answer continues the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationKey {
    /// A thread the bot started or answered in.
    Thread(u64),
    /// A reply chain in a channel, named by its first question's message id.
    Chain(u64),
}

impl ConversationKey {
    /// The id the key is built from (thread channel or first message), for stores and logs.
    pub fn id(&self) -> u64 {
        match self {
            ConversationKey::Thread(id) | ConversationKey::Chain(id) => *id,
        }
    }
}

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

/// Keeps conversations. Async (boxed futures) so a database-backed implementation fits; every
/// method takes the current time so tests and stores agree on ages.
pub trait ConversationHistory: Send + Sync {
    /// The turns of `key` within the limits, oldest first.
    fn recent(
        &self,
        key: ConversationKey,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<Vec<PriorTurn>, HistoryError>>;
    /// Appends a turn to `key` (older turns past the limits may be dropped).
    fn record(
        &self,
        key: ConversationKey,
        turn: PriorTurn,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<(), HistoryError>>;
    /// Remembers that `message_id` (an answer the bot posted) belongs to `key`, so a reply to it
    /// continues the conversation.
    fn link(
        &self,
        message_id: u64,
        key: ConversationKey,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<(), HistoryError>>;
    /// The conversation a message belongs to, if it was linked and is not too old.
    fn conversation_of(
        &self,
        message_id: u64,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<Option<ConversationKey>, HistoryError>>;
    /// Whether `channel_id` is a thread the bot answered in within [`THREAD_MEMORY`].
    fn is_bot_thread(
        &self,
        channel_id: u64,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<bool, HistoryError>>;
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

    fn with_state<T>(&self, work: impl FnOnce(&mut MemoryState) -> T) -> Result<T, HistoryError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| HistoryError::Unavailable("the history lock was poisoned".to_string()))?;
        Ok(work(&mut state))
    }

    fn max_age_secs(&self) -> i64 {
        i64::try_from(self.limits.max_age.as_secs()).unwrap_or(i64::MAX)
    }
}

fn thread_memory_secs() -> i64 {
    i64::try_from(THREAD_MEMORY.as_secs()).unwrap_or(i64::MAX)
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
    fn recent(
        &self,
        key: ConversationKey,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<Vec<PriorTurn>, HistoryError>> {
        let oldest = now_unix.saturating_sub(self.max_age_secs());
        let turns = self.with_state(|state| {
            state
                .conversations
                .get(&key)
                .map(|conversation| {
                    conversation
                        .turns
                        .iter()
                        .filter(|(at, _)| *at >= oldest)
                        .map(|(_, turn)| turn.clone())
                        .collect()
                })
                .unwrap_or_default()
        });
        Box::pin(std::future::ready(turns))
    }

    fn record(
        &self,
        key: ConversationKey,
        turn: PriorTurn,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<(), HistoryError>> {
        let keep = self.limits.turns.max(1);
        let result = self.with_state(|state| {
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
        });
        Box::pin(std::future::ready(result))
    }

    fn link(
        &self,
        message_id: u64,
        key: ConversationKey,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<(), HistoryError>> {
        let result = self.with_state(|state| {
            state.links.insert(message_id, (key, now_unix));
            evict(&mut state.links, MEMORY_CONVERSATIONS, |(_, at)| *at);
        });
        Box::pin(std::future::ready(result))
    }

    fn conversation_of(
        &self,
        message_id: u64,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<Option<ConversationKey>, HistoryError>> {
        let oldest = now_unix.saturating_sub(thread_memory_secs());
        let found = self.with_state(|state| {
            state
                .links
                .get(&message_id)
                .filter(|(_, at)| *at >= oldest)
                .map(|(key, _)| *key)
        });
        Box::pin(std::future::ready(found))
    }

    fn is_bot_thread(
        &self,
        channel_id: u64,
        now_unix: i64,
    ) -> BoxFuture<'_, Result<bool, HistoryError>> {
        let oldest = now_unix.saturating_sub(thread_memory_secs());
        let known = self.with_state(|state| {
            state
                .conversations
                .get(&ConversationKey::Thread(channel_id))
                .is_some_and(|conversation| conversation.last_at >= oldest)
        });
        Box::pin(std::future::ready(known))
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
