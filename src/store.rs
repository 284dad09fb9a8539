//! Embedded storage for feedback, analytics, LLM budgets and the answer cache: one SQLite file by
//! default, behind the [`Store`] trait so a shared database can replace it when several replicas run.
//!
//! Privacy: no raw Discord ids or names at rest. Users and guilds are stored as salted SHA-256 hashes
//! ([`hash_id`]); a retention setting deletes old rows. Every method returns a `Result`: callers log a
//! failure and keep answering (a locked or unwritable database never takes the bot down).

use crate::answer::Answer;
use crate::util::clock::day_of;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// A storage failure; the message names what failed, never user data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot open the database {path}: {message}")]
    Open { path: String, message: String },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the storage worker stopped: {0}")]
    Stopped(String),
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

/// Whose budget a usage counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetScope {
    User(String),
    Guild(String),
}

impl BudgetScope {
    fn key(&self) -> String {
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

/// A question worth a maintainer's look.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttentionItem {
    pub question: String,
    pub reason: String,
    pub count: u64,
}

/// Storage used by the bot. Implementations must be `Send + Sync` and fail softly.
pub trait Store: Send + Sync {
    fn record_question(&self, record: &QuestionRecord) -> Result<(), StoreError>;
    fn record_feedback(&self, record: &FeedbackRecord) -> Result<(), StoreError>;
    /// Adds one LLM request and its tokens to today's usage of `scope`.
    fn add_usage(&self, scope: &BudgetScope, day: &str, tokens: u64) -> Result<(), StoreError>;
    fn usage(&self, scope: &BudgetScope, day: &str) -> Result<Usage, StoreError>;
    /// A cached answer for `key` stored less than `ttl` ago.
    fn cached_answer(
        &self,
        key: &str,
        ttl: Duration,
        now_unix: i64,
    ) -> Result<Option<Answer>, StoreError>;
    fn put_cached_answer(
        &self,
        key: &str,
        answer: &Answer,
        now_unix: i64,
    ) -> Result<(), StoreError>;
    /// Deletes questions, feedback, usage and cache rows older than `days`; returns rows deleted.
    fn purge_older_than(&self, days: u32, now_unix: i64) -> Result<usize, StoreError>;
    fn report(&self, since_days: u32, now_unix: i64) -> Result<Report, StoreError>;
}

/// The embedded default: one SQLite file (WAL mode, a busy timeout so brief locks are waited out).
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS questions (
    id INTEGER PRIMARY KEY,
    at_unix INTEGER NOT NULL,
    day TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    guild_hash TEXT,
    command TEXT NOT NULL,
    question TEXT NOT NULL,
    normalized TEXT NOT NULL,
    refused INTEGER NOT NULL,
    mode TEXT NOT NULL,
    top_coverage REAL,
    answer_key TEXT,
    citations TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS questions_at ON questions(at_unix);
CREATE INDEX IF NOT EXISTS questions_answer_key ON questions(answer_key);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    at_unix INTEGER NOT NULL,
    user_hash TEXT NOT NULL,
    answer_key TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    UNIQUE(user_hash, answer_key) ON CONFLICT REPLACE
);
CREATE TABLE IF NOT EXISTS usage (
    scope TEXT NOT NULL,
    day TEXT NOT NULL,
    requests INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (scope, day)
);
CREATE TABLE IF NOT EXISTS answer_cache (
    key TEXT PRIMARY KEY,
    at_unix INTEGER NOT NULL,
    answer TEXT NOT NULL
);
";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| StoreError::Open {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        }
        let connection = Connection::open(path).map_err(|error| StoreError::Open {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        SqliteStore::with_connection(connection)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(connection: Connection) -> Result<SqliteStore, StoreError> {
        connection.busy_timeout(Duration::from_millis(250))?;
        // WAL lets readers (reports) run while the bot writes; ignore failure on read-only media.
        let _ = connection.pragma_update(None, "journal_mode", "WAL");
        connection.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let connection = self
            .connection
            .lock()
            .map_err(|_| StoreError::Corrupt("a previous database call panicked".to_string()))?;
        work(&connection)
    }
}

impl Store for SqliteStore {
    fn record_question(&self, record: &QuestionRecord) -> Result<(), StoreError> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO questions (at_unix, day, user_hash, guild_hash, command, question, normalized, refused, mode, top_coverage, answer_key, citations, fingerprint)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    record.at_unix,
                    day_of(record.at_unix),
                    record.user_hash,
                    record.guild_hash,
                    record.command,
                    record.question,
                    normalize_question(&record.question),
                    record.refused,
                    record.mode,
                    record.top_coverage.map(f64::from),
                    record.answer_key,
                    record.citations.join("\n"),
                    record.fingerprint,
                ],
            )?;
            Ok(())
        })
    }

    fn record_feedback(&self, record: &FeedbackRecord) -> Result<(), StoreError> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO feedback (at_unix, user_hash, answer_key, helpful) VALUES (?1, ?2, ?3, ?4)",
                params![record.at_unix, record.user_hash, record.answer_key, record.helpful],
            )?;
            Ok(())
        })
    }

    fn add_usage(&self, scope: &BudgetScope, day: &str, tokens: u64) -> Result<(), StoreError> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO usage (scope, day, requests, tokens) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT(scope, day) DO UPDATE SET requests = requests + 1, tokens = tokens + excluded.tokens",
                params![scope.key(), day, tokens as i64],
            )?;
            Ok(())
        })
    }

    fn usage(&self, scope: &BudgetScope, day: &str) -> Result<Usage, StoreError> {
        self.with(|connection| {
            let usage = connection
                .query_row(
                    "SELECT requests, tokens FROM usage WHERE scope = ?1 AND day = ?2",
                    params![scope.key(), day],
                    |row| {
                        Ok(Usage {
                            requests: row.get::<_, i64>(0)?.max(0) as u64,
                            tokens: row.get::<_, i64>(1)?.max(0) as u64,
                        })
                    },
                )
                .optional()?;
            Ok(usage.unwrap_or_default())
        })
    }

    fn cached_answer(
        &self,
        key: &str,
        ttl: Duration,
        now_unix: i64,
    ) -> Result<Option<Answer>, StoreError> {
        let oldest = now_unix - ttl.as_secs() as i64;
        let stored: Option<String> = self.with(|connection| {
            Ok(connection
                .query_row(
                    "SELECT answer FROM answer_cache WHERE key = ?1 AND at_unix >= ?2",
                    params![key, oldest],
                    |row| row.get(0),
                )
                .optional()?)
        })?;
        match stored {
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|error| StoreError::Corrupt(error.to_string())),
            None => Ok(None),
        }
    }

    fn put_cached_answer(
        &self,
        key: &str,
        answer: &Answer,
        now_unix: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(answer)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.with(|connection| {
            connection.execute(
                "INSERT INTO answer_cache (key, at_unix, answer) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET at_unix = excluded.at_unix, answer = excluded.answer",
                params![key, now_unix, json],
            )?;
            Ok(())
        })
    }

    fn purge_older_than(&self, days: u32, now_unix: i64) -> Result<usize, StoreError> {
        let cutoff = now_unix - i64::from(days) * 86_400;
        let cutoff_day = day_of(cutoff);
        self.with(|connection| {
            let mut deleted = 0;
            deleted +=
                connection.execute("DELETE FROM questions WHERE at_unix < ?1", params![cutoff])?;
            deleted +=
                connection.execute("DELETE FROM feedback WHERE at_unix < ?1", params![cutoff])?;
            deleted +=
                connection.execute("DELETE FROM usage WHERE day < ?1", params![cutoff_day])?;
            deleted += connection.execute(
                "DELETE FROM answer_cache WHERE at_unix < ?1",
                params![cutoff],
            )?;
            Ok(deleted)
        })
    }

    fn report(&self, since_days: u32, now_unix: i64) -> Result<Report, StoreError> {
        let since = now_unix - i64::from(since_days) * 86_400;
        self.with(|connection| {
            let (questions, refused): (i64, i64) = connection.query_row(
                "SELECT COUNT(*), COALESCE(SUM(refused), 0) FROM questions WHERE at_unix >= ?1",
                params![since],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let mut per_day = connection.prepare(
                "SELECT day, COUNT(*) FROM questions WHERE at_unix >= ?1 GROUP BY day ORDER BY day",
            )?;
            let questions_per_day = per_day
                .query_map(params![since], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))?
                .collect::<Result<Vec<_>, _>>()?;
            let (helpful, not_helpful): (i64, i64) = connection.query_row(
                "SELECT COALESCE(SUM(helpful), 0), COALESCE(SUM(1 - helpful), 0) FROM feedback WHERE at_unix >= ?1",
                params![since],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let mut most = connection.prepare(
                "SELECT MIN(question), COUNT(*) AS asked FROM questions WHERE at_unix >= ?1
                 GROUP BY normalized ORDER BY asked DESC, MIN(at_unix) LIMIT 10",
            )?;
            let most_asked = most
                .query_map(params![since], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut attention_refused = connection.prepare(
                "SELECT MIN(question), COUNT(*) FROM questions WHERE at_unix >= ?1 AND refused = 1
                 GROUP BY normalized ORDER BY COUNT(*) DESC LIMIT 50",
            )?;
            let mut needs_attention: Vec<AttentionItem> = attention_refused
                .query_map(params![since], |row| {
                    Ok(AttentionItem {
                        question: row.get(0)?,
                        reason: "refused".to_string(),
                        count: row.get::<_, i64>(1)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut attention_down = connection.prepare(
                "SELECT MIN(q.question), COUNT(*) FROM feedback f JOIN questions q ON q.answer_key = f.answer_key
                 WHERE f.at_unix >= ?1 AND f.helpful = 0 GROUP BY q.normalized ORDER BY COUNT(*) DESC LIMIT 50",
            )?;
            needs_attention.extend(
                attention_down
                    .query_map(params![since], |row| {
                        Ok(AttentionItem {
                            question: row.get(0)?,
                            reason: "not helpful".to_string(),
                            count: row.get::<_, i64>(1)? as u64,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?,
            );
            let votes = helpful + not_helpful;
            Ok(Report {
                since_days,
                questions: questions as u64,
                questions_per_day,
                refusal_rate: if questions == 0 { 0.0 } else { refused as f64 / questions as f64 },
                feedback_helpful: helpful as u64,
                feedback_not_helpful: not_helpful as u64,
                feedback_ratio: (votes > 0).then(|| helpful as f64 / votes as f64),
                most_asked,
                needs_attention,
            })
        })
    }
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
    fn questions_normalize() {
        assert_eq!(normalize_question("  What's the TC?? "), "what's the tc");
    }
}
