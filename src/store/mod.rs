//! Storage for feedback, analytics (questions and hand-offs to helpers), LLM budgets and
//! cooldowns, replayed interaction ids, the answer cache and conversation history, behind one async [`Store`] trait with two backends:
//! SQLite ([`SqliteStore`], one embedded file, the default) and PostgreSQL ([`PostgresStore`],
//! shared by any number of replicas). [`Storage`] sits in front of either: a bounded queue to one
//! batching writer task (no write is on a request's path), an in-memory LRU in front of the answer
//! cache, and the health that `/readyz` reads. Conversation turns are the exception to the queue:
//! they are written at once, so another replica's next follow-up reads them.
//!
//! Privacy: no user or guild id or name at rest. Users and guilds are stored as salted SHA-256
//! hashes ([`hash_id`]), and so are conversations and linked messages; the one raw id is a
//! conversation's own (a thread's, or a chain's first message), kept in a message link so a reply
//! leads back to it. A retention setting deletes old rows. Every method returns a `Result`:
//! callers log a failure and keep answering (a locked or unreachable database never takes the
//! bot down).

mod migrations;
mod postgres;
mod replay;
mod sqlite;
mod writer;

pub use migrations::{Migration, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use postgres::PostgresStore;
pub use replay::{
    parse_snowflake, ReplayMemory, Verdict, DISCORD_EPOCH_MS, FUTURE_REMEMBERED, PENDING_CAP,
    REPLAY_MEMORY_AHEAD, REPLAY_MEMORY_BEHIND,
};
pub use sqlite::SqliteStore;
pub use writer::{Storage, StorageCounters, StorageOptions, StoreReadiness};

use crate::answer::Answer;
use crate::engine::PriorTurn;
use crate::util::secret::{mask_url_credentials, Secret};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

/// A storage failure; the message names what failed, never user data or credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    #[error("cannot open the database {path}: {message}")]
    Open { path: String, message: String },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the storage worker stopped: {0}")]
    Stopped(String),
}

/// Which database a process uses; chosen by `bot.store_url` / `GUIDEBOT_STORE_URL` (PostgreSQL)
/// or else `bot.store_path` (SQLite).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreTarget {
    /// One SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user@host:5432/db`); the password may be in it (when it came
    /// from the environment) or given apart (`GUIDEBOT_STORE_PASSWORD`).
    Postgres {
        url: Secret,
        password: Option<Secret>,
    },
}

impl StoreTarget {
    /// The backend this target uses.
    pub fn backend(&self) -> Backend {
        match self {
            StoreTarget::Sqlite(_) => Backend::Sqlite,
            StoreTarget::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Where it points, safe to log: the file, or the URL without credentials.
    pub fn describe(&self) -> String {
        match self {
            StoreTarget::Sqlite(path) => path.display().to_string(),
            StoreTarget::Postgres { url, .. } => mask_url_credentials(url.expose()),
        }
    }

    /// Opens the store. SQLite opens and migrates at once; PostgreSQL builds its pool without
    /// connecting (call [`Store::migrate`], which connects, retrying while it fails).
    pub fn open(&self) -> Result<std::sync::Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreTarget::Sqlite(path) => std::sync::Arc::new(SqliteStore::open(path)?),
            StoreTarget::Postgres { url, password } => {
                std::sync::Arc::new(PostgresStore::connect(url, password.as_ref())?)
            }
        })
    }
}

/// The two backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// One answered (or refused) question, for analytics.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionRecord {
    pub at_unix: i64,
    pub user_hash: String,
    pub guild_hash: Option<String>,
    pub command: String,
    pub question: String,
    pub refused: bool,
    pub mode: String,
    pub top_coverage: Option<f32>,
    pub answer_key: Option<String>,
    pub citations: Vec<String>,
    pub fingerprint: String,
}

/// A 👍/👎 on an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRecord {
    pub at_unix: i64,
    pub user_hash: String,
    pub answer_key: String,
    pub helpful: bool,
}

/// A press of "Still need help?" that pinged the server's helper role: kept so `/guidebot stats`
/// counts hand-offs from the database every replica writes to, not one process's memory. Ids are
/// salted hashes, like every other analytics row.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationRecord {
    pub at_unix: i64,
    pub user_hash: String,
    pub guild_hash: String,
    /// The answer the member still needed help with.
    pub answer_key: String,
}

/// Whose budget a usage counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetScope {
    User(String),
    Guild(String),
}

impl BudgetScope {
    /// The key stored in the `usage` table.
    pub fn key(&self) -> String {
        match self {
            BudgetScope::User(hash) => format!("user:{hash}"),
            BudgetScope::Guild(hash) => format!("guild:{hash}"),
        }
    }
}

/// LLM use within one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub requests: u64,
    pub tokens: u64,
}

impl Usage {
    /// The usage as stored (two BIGINT columns).
    pub(crate) fn stored(requests: i64, tokens: i64) -> Usage {
        let (requests, tokens) = (stored_count(requests), stored_count(tokens));
        Usage { requests, tokens }
    }
}

/// One write that goes through the batching writer (never on a request's path).
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Question(QuestionRecord),
    Feedback(FeedbackRecord),
    /// A hand-off to the helper role.
    Escalation(EscalationRecord),
    /// Tokens of one LLM answer, added to each scope's usage of `day` (the request itself was
    /// counted when the answer was claimed, see [`Store::claim_llm`]).
    Tokens {
        scopes: Vec<BudgetScope>,
        day: String,
        tokens: u64,
    },
    /// A written answer for the shared cache.
    CachedAnswer(CachedAnswerRecord),
    /// Requests and tokens added to one scope's usage of a day (a moved database's rows).
    Usage(UsageRecord),
    /// Interaction ids a replay check accepted from memory (SQLite), recorded for the store's
    /// own check and for a restart; an id already recorded is left as it is.
    SeenInteractions {
        ids: Vec<u64>,
        at_unix: i64,
    },
}

/// A written answer in the shared cache, as JSON, and when it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnswerRecord {
    pub key: String,
    pub at_unix: i64,
    pub answer_json: String,
}

/// One scope's LLM use of one day, as the `usage` table keeps it (`scope` is a
/// [`BudgetScope::key`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub scope: String,
    pub day: String,
    pub usage: Usage,
}

impl Write {
    /// An answer for the shared cache, stored at `now_unix`.
    pub fn cached_answer(key: &str, answer: &Answer, now_unix: i64) -> Result<Write, StoreError> {
        let answer_json = serde_json::to_string(answer)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let (key, at_unix) = (key.to_string(), now_unix);
        let record = CachedAnswerRecord {
            key,
            at_unix,
            answer_json,
        };
        Ok(Write::CachedAnswer(record))
    }

    /// What this write adds to the `usage` table: `(scope key, day, requests, tokens)` rows.
    pub(crate) fn usage_added(&self) -> Vec<(String, &str, i64, i64)> {
        match self {
            Write::Tokens {
                scopes,
                day,
                tokens,
            } => {
                let tokens = sql_limit(*tokens);
                scopes
                    .iter()
                    .map(|scope| (scope.key(), day.as_str(), 0, tokens))
                    .collect()
            }
            Write::Usage(UsageRecord { scope, day, usage }) => {
                let (requests, tokens) = (sql_limit(usage.requests), sql_limit(usage.tokens));
                vec![(scope.clone(), day.as_str(), requests, tokens)]
            }
            _ => Vec::new(),
        }
    }
}

/// One scope's daily limits for a claim; `None` = unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeLimit {
    pub scope: BudgetScope,
    pub requests_per_day: Option<u64>,
    pub tokens_per_day: Option<u64>,
}

/// A request for one LLM answer: budgets to charge and a cooldown to take, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmClaim {
    pub day: String,
    pub scopes: Vec<ScopeLimit>,
    /// The user whose cooldown is taken; `None` when there is no cooldown.
    pub cooldown: Option<Cooldown>,
}

/// A per-user cooldown to take with a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooldown {
    pub user_hash: String,
    pub now_millis: i64,
    pub length: Duration,
}

/// What a claim decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Charged: one request counted against every scope, and the cooldown started.
    Allowed,
    /// A scope's daily requests or tokens are spent; nothing was charged.
    OverBudget,
    /// The user's cooldown is running; nothing was charged.
    Throttled,
}

impl ScopeLimit {
    /// A limit of zero: no request can ever pass.
    fn is_closed(&self) -> bool {
        self.requests_per_day == Some(0) || self.tokens_per_day == Some(0)
    }

    /// The limits as the SQL's bounds (`i64::MAX` for unlimited).
    fn bounds(&self) -> (i64, i64) {
        let bound =
            |limit: Option<u64>| limit.map_or(i64::MAX, |max| max.min(i64::MAX as u64) as i64);
        (bound(self.requests_per_day), bound(self.tokens_per_day))
    }
}

impl LlmClaim {
    /// Whether a scope's limit is zero (decided without the database).
    pub fn is_closed(&self) -> bool {
        self.scopes.iter().any(ScopeLimit::is_closed)
    }
}

/// Every row of a store, for `guidebot store migrate` (SQLite → PostgreSQL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    pub questions: Vec<QuestionRecord>,
    pub feedback: Vec<FeedbackRecord>,
    pub usage: Vec<UsageRecord>,
    pub cache: Vec<CachedAnswerRecord>,
    pub escalations: Vec<EscalationRecord>,
}

impl Dump {
    /// Every row as the write that adds it, for [`Store::import`].
    pub fn writes(&self) -> Vec<Write> {
        let questions = self.questions.iter().cloned().map(Write::Question);
        let feedback = self.feedback.iter().cloned().map(Write::Feedback);
        let usage = self.usage.iter().cloned().map(Write::Usage);
        let cache = self.cache.iter().cloned().map(Write::CachedAnswer);
        let escalations = self.escalations.iter().cloned().map(Write::Escalation);
        questions
            .chain(feedback)
            .chain(usage)
            .chain(cache)
            .chain(escalations)
            .collect()
    }
}

/// One server's questions, feedback and hand-offs from the shared database: what `/guidebot
/// stats` shows, the same whichever replica answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GuildStats {
    pub questions: u64,
    pub refused: u64,
    /// 👍 and 👎 on answers given in this server.
    pub helpful: u64,
    pub not_helpful: u64,
    /// Hand-offs to the helper role in this server.
    pub escalations: u64,
    /// The most refused questions (first wording, count), most frequent first.
    pub top_unanswered: Vec<(String, u64)>,
}

impl GuildStats {
    /// The figures from the counts a backend read: questions, refused, helpful, not helpful,
    /// hand-offs.
    pub(crate) fn from_counts(counts: [i64; 5], top_unanswered: Vec<(String, u64)>) -> GuildStats {
        let [questions, refused, helpful, not_helpful, escalations] = counts.map(stored_count);
        GuildStats {
            questions,
            refused,
            helpful,
            not_helpful,
            escalations,
            top_unanswered,
        }
    }
}

/// What `guidebot report` prints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub since_days: u32,
    pub questions: u64,
    pub questions_per_day: Vec<(String, u64)>,
    pub refusal_rate: f64,
    pub feedback_helpful: u64,
    pub feedback_not_helpful: u64,
    /// helpful / (helpful + not helpful), `None` without feedback.
    pub feedback_ratio: Option<f64>,
    pub most_asked: Vec<(String, u64)>,
    /// Refused or 👎 questions: the raw material for new eval cases and guide sections.
    pub needs_attention: Vec<AttentionItem>,
}

impl Report {
    /// The report from what a backend read since `since_days` ago: the question, refused, helpful
    /// and not-helpful counts, and the `(text, count)` lists in this order: questions per day,
    /// most asked, most refused, most voted not helpful. Computed once here for both backends.
    pub(crate) fn from_counts(
        since_days: u32,
        counts: [i64; 4],
        lists: impl IntoIterator<Item = Vec<(String, u64)>>,
    ) -> Report {
        let [questions, refused, helpful, not_helpful] = counts.map(stored_count);
        let mut lists = lists.into_iter();
        let mut next = || lists.next().unwrap_or_default();
        let (questions_per_day, most_asked) = (next(), next());
        let needs_attention = [("refused", next()), ("not helpful", next())]
            .into_iter()
            .flat_map(|(reason, pairs)| {
                pairs
                    .into_iter()
                    .map(move |(question, count)| AttentionItem {
                        question,
                        reason: reason.to_string(),
                        count,
                    })
            })
            .collect();
        let votes = helpful + not_helpful;
        Report {
            since_days,
            questions,
            questions_per_day,
            refusal_rate: if questions == 0 {
                0.0
            } else {
                refused as f64 / questions as f64
            },
            feedback_helpful: helpful,
            feedback_not_helpful: not_helpful,
            feedback_ratio: (votes > 0).then(|| helpful as f64 / votes as f64),
            most_asked,
            needs_attention,
        }
    }
}

/// A question worth a maintainer's look.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttentionItem {
    pub question: String,
    pub reason: String,
    pub count: u64,
}

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

    /// `thread` or `chain`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            ConversationKey::Thread(_) => "thread",
            ConversationKey::Chain(_) => "chain",
        }
    }

    /// The key stored as `kind` and `id` (ids are stored as the same 64 bits, signed); an
    /// unknown kind is corrupt data.
    pub fn from_stored(kind: &str, id: i64) -> Result<ConversationKey, StoreError> {
        let id = id as u64;
        match kind {
            "thread" => Ok(ConversationKey::Thread(id)),
            "chain" => Ok(ConversationKey::Chain(id)),
            other => Err(StoreError::Corrupt(format!(
                "unknown conversation kind {other:?}"
            ))),
        }
    }

    /// The id as stored (a snowflake's 64 bits in a signed column).
    pub fn stored_id(&self) -> i64 {
        self.id() as i64
    }
}

/// How long replayed interaction ids and cooldowns are kept: longer than any replay window
/// (at most an hour) and any cooldown (at most a day).
pub const SHORT_LIVED_KEEP: Duration = Duration::from_secs(86_400);

/// Storage used by the bot: async, `Send + Sync`, failing softly. Both backends pass one
/// behavioural suite (`tests/store.rs`).
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Times the database was found removed or replaced while serving and opened again (an
    /// embedded file; a server database reconnects instead, so 0 there).
    fn reopened(&self) -> u64 {
        0
    }
    /// Applies the versioned migrations not applied yet; returns how many this call applied
    /// (0 when another replica already did). Safe to run from several processes at once.
    async fn migrate(&self) -> Result<usize, StoreError>;
    /// Writes a batch in one transaction.
    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError>;
    /// Atomically charges one LLM request against every scope (none over its limit) and takes
    /// the cooldown; all or nothing, across every process sharing the database.
    async fn claim_llm(&self, claim: &LlmClaim) -> Result<ClaimOutcome, StoreError>;
    /// Today's usage of `scope`.
    async fn usage(&self, scope: &BudgetScope, day: &str) -> Result<Usage, StoreError>;
    /// The cached answer JSON for `key` stored at or after `oldest_unix`.
    async fn cached_answer_json(
        &self,
        key: &str,
        oldest_unix: i64,
    ) -> Result<Option<(i64, String)>, StoreError>;
    /// Remembers an interaction id; `true` the first time it is seen, `false` for a replay.
    async fn first_sighting(&self, interaction_id: &str, now_unix: i64)
        -> Result<bool, StoreError>;
    /// The recorded interaction ids that are canonical decimal numbers from `first` to `last`
    /// (inclusive): what an SQLite process loads into its in-memory replay check on start.
    async fn interaction_ids_between(&self, first: u64, last: u64) -> Result<Vec<u64>, StoreError>;
    /// Deletes questions, feedback, hand-offs, usage, cache rows, conversation turns and message
    /// links older than `days` (and replay ids and cooldowns older than [`SHORT_LIVED_KEEP`]); returns rows
    /// deleted.
    async fn purge_older_than(&self, days: u32, now_unix: i64) -> Result<usize, StoreError>;
    async fn report(&self, since_days: u32, now_unix: i64) -> Result<Report, StoreError>;
    /// One server's figures (`guild_hash` as stored) since `since_days` ago: `/guidebot stats`.
    async fn guild_stats(
        &self,
        guild_hash: &str,
        since_days: u32,
        now_unix: i64,
    ) -> Result<GuildStats, StoreError>;
    /// Every row, for moving a database to another backend.
    async fn dump(&self) -> Result<Dump, StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// The last `turns` turns of `conversation` (as the history names it: a salted hash of its
    /// key) stored at or after `oldest_unix`, oldest first.
    async fn conversation_turns(
        &self,
        conversation: &str,
        turns: usize,
        oldest_unix: i64,
    ) -> Result<Vec<PriorTurn>, StoreError>;
    /// Appends a turn to `conversation` and keeps only its last `keep` turns, in one transaction;
    /// committed when this returns, so another replica's next read sees it.
    async fn record_turn(
        &self,
        conversation: &str,
        turn: &PriorTurn,
        at_unix: i64,
        keep: usize,
    ) -> Result<(), StoreError>;
    /// Whether `conversation` has a turn stored at or after `oldest_unix` (for a thread: one the
    /// bot answered in lately).
    async fn conversation_active_since(
        &self,
        conversation: &str,
        oldest_unix: i64,
    ) -> Result<bool, StoreError>;
    /// Links a message (a salted hash of its id) to the conversation it belongs to; a later link
    /// of the same message replaces it.
    async fn link_message(
        &self,
        message: &str,
        conversation: ConversationKey,
        at_unix: i64,
    ) -> Result<(), StoreError>;
    /// The conversation `message` was linked to at or after `oldest_unix`.
    async fn linked_conversation(
        &self,
        message: &str,
        oldest_unix: i64,
    ) -> Result<Option<ConversationKey>, StoreError>;

    /// Writes one question now (tests and tools; the bot goes through [`Storage`]).
    async fn record_question(&self, record: &QuestionRecord) -> Result<(), StoreError> {
        self.write_batch(&[Write::Question(record.clone())]).await
    }
    /// Writes one vote now.
    async fn record_feedback(&self, record: &FeedbackRecord) -> Result<(), StoreError> {
        self.write_batch(&[Write::Feedback(record.clone())]).await
    }
    /// Caches an answer now.
    async fn put_cached_answer(
        &self,
        key: &str,
        answer: &Answer,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        self.write_batch(&[Write::cached_answer(key, answer, now_unix)?])
            .await
    }
    /// A cached answer for `key` stored less than `ttl` ago.
    async fn cached_answer(
        &self,
        key: &str,
        ttl: Duration,
        now_unix: i64,
    ) -> Result<Option<Answer>, StoreError> {
        let answer = self.stored_answer(key, cached_since(ttl, now_unix)).await?;
        Ok(answer.map(|(_, answer)| answer))
    }
    /// The cached answer for `key` stored at or after `oldest_unix`, with when it was stored.
    async fn stored_answer(
        &self,
        key: &str,
        oldest_unix: i64,
    ) -> Result<Option<(i64, Answer)>, StoreError> {
        let Some((at, json)) = self.cached_answer_json(key, oldest_unix).await? else {
            return Ok(None);
        };
        let answer =
            serde_json::from_str(&json).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        Ok(Some((at, answer)))
    }
    /// Adds every row of `dump` in one transaction (usage is added to what is there).
    async fn import(&self, dump: &Dump) -> Result<(), StoreError> {
        self.write_batch(&dump.writes()).await
    }
}

/// The decimal spellings of the numbers from `first` to `last`, as ranges of one length each:
/// `(length, lowest, highest)`. Stores keep ids as text; within one length, text order is number
/// order, so each range is one index scan.
pub(crate) fn decimal_ranges(first: u64, last: u64) -> Vec<(i64, String, String)> {
    let mut ranges = Vec::new();
    let mut low = first;
    while low <= last {
        let length = low.to_string().len() as u32;
        let top = 10u64
            .checked_pow(length)
            .map_or(u64::MAX, |next| next - 1)
            .min(last);
        ranges.push((i64::from(length), low.to_string(), top.to_string()));
        match top.checked_add(1) {
            Some(next) => low = next,
            None => break,
        }
    }
    ranges
}

/// A salted SHA-256 of a Discord id: stable for counting and budgets, useless for identifying.
pub fn hash_id(salt: &str, id: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(b"\0");
    hasher.update(id.to_le_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// Lowercase, collapsed whitespace, no trailing punctuation: "What's the TC?? " and "what's the tc" match.
pub fn normalize_question(question: &str) -> String {
    crate::corpus::collapse_whitespace(&question.to_lowercase())
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_string()
}

/// The oldest time, in Unix seconds, an answer younger than `ttl` at `now_unix` was cached at.
pub(crate) fn cached_since(ttl: Duration, now_unix: i64) -> i64 {
    now_unix.saturating_sub(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

/// `days` days before `now_unix`: where a retention period or a report's period starts.
pub(crate) fn days_before(now_unix: i64, days: u32) -> i64 {
    now_unix - i64::from(days) * 86_400
}

/// A count read from the database (a signed BIGINT) as the unsigned figure it is.
pub(crate) fn stored_count(value: i64) -> u64 {
    value.max(0) as u64
}

/// A count as a BIGINT parameter (a `LIMIT`, tokens): `i64::MAX` past it.
pub(crate) fn sql_limit(count: impl TryInto<i64>) -> i64 {
    count.try_into().unwrap_or(i64::MAX)
}

/// Citations as stored (one per line) read back.
pub(crate) fn stored_citations(text: &str) -> Vec<String> {
    let lines = text.lines().filter(|line| !line.is_empty());
    lines.map(str::to_string).collect()
}

/// Milliseconds since the Unix epoch, for cooldowns shared across processes.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hashed_with_the_salt() {
        assert_ne!(hash_id("a", 1), hash_id("b", 1));
        assert_eq!(hash_id("a", 1), hash_id("a", 1));
        assert!(!hash_id("a", 123456789).contains("123456789"));
    }

    #[test]
    fn decimal_ranges_split_at_each_length() {
        assert_eq!(
            decimal_ranges(7, 123),
            vec![
                (1, "7".to_string(), "9".to_string()),
                (2, "10".to_string(), "99".to_string()),
                (3, "100".to_string(), "123".to_string())
            ]
        );
        assert_eq!(decimal_ranges(5, 4), vec![]);
        let top = decimal_ranges(u64::MAX - 1, u64::MAX);
        assert_eq!(
            top,
            vec![(20, (u64::MAX - 1).to_string(), u64::MAX.to_string())]
        );
    }

    #[test]
    fn questions_normalize() {
        assert_eq!(normalize_question("  What's the TC?? "), "what's the tc");
    }
}
