//! The embedded backend: one SQLite file (WAL mode, a busy timeout so brief locks are waited out),
//! owned by one dedicated thread. Async callers send it closures and await the answer, so SQLite's
//! blocking calls never run on tokio's workers and never need a thread per request.

use super::migrations::SQLITE_MIGRATIONS;
use super::replay::parse_snowflake;
use super::{
    days_before, decimal_ranges, sql_limit, stored_citations, stored_count, Backend, BudgetScope,
    CachedAnswerRecord, ClaimOutcome, ConversationKey, Dump, EscalationRecord, FeedbackRecord,
    GuildStats, LlmClaim, QuestionRecord, Report, Store, StoreError, Usage, UsageRecord, Write,
    SHORT_LIVED_KEEP,
};
use crate::engine::PriorTurn;
use crate::util::clock::day_of;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::sync::oneshot;

/// What the connection's thread is asked to do.
enum Job {
    /// Any call: a closure run on the connection.
    Work(Box<dyn FnOnce(&mut Connection) + Send>),
    /// A replay check (one per interaction, on the request path): the ones waiting together are
    /// committed in one transaction, so a burst costs one WAL write instead of one each.
    Sighting(Sighting),
}

/// One replay check waiting for its answer.
struct Sighting {
    id: String,
    now_unix: i64,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// Replay checks committed together at the most.
const SIGHTINGS_PER_COMMIT: usize = 256;

/// The embedded default. Cheap to share: every call goes to the connection's own thread.
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    /// Times the file was found removed or replaced and opened again.
    reopened: Arc<AtomicU64>,
}

/// A file's identity (device, inode): a file deleted or replaced under an open connection has
/// another one, or none.
#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies the migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_error = |message: String| StoreError::Open {
            path: path.display().to_string(),
            message,
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| open_error(error.to_string()))?;
        }
        let connection = open_file(path).map_err(|error| open_error(error.to_string()))?;
        SqliteStore::with_connection(connection, Some(path.to_path_buf()))
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let mut connection = Connection::open_in_memory()?;
        configure(&mut connection)?;
        SqliteStore::with_connection(connection, None)
    }

    /// Starts the connection's thread. With a `path`, every call first checks that the file is
    /// still the one opened: one deleted or replaced while serving (an operator's `rm`, a restore)
    /// is opened again, with a warning and a count, instead of writing on into an unlinked file
    /// whose rows vanish at the next restart.
    fn with_connection(
        mut connection: Connection,
        path: Option<PathBuf>,
    ) -> Result<SqliteStore, StoreError> {
        let reopened = Arc::new(AtomicU64::new(0));
        let reopened_count = Arc::clone(&reopened);
        let mut watched = path.map(|path| {
            let identity = file_identity(&path);
            (path, identity)
        });
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("guidebot-sqlite".to_string())
            .spawn(move || {
                // Ends when the last handle is dropped; a panicking job only fails its caller.
                let mut next: Option<Job> = None;
                while let Some(job) = next.take().or_else(|| receiver.recv().ok()) {
                    if let Some((path, identity)) = &mut watched {
                        if file_identity(path) != *identity || identity.is_none() {
                            match open_file(path) {
                                Ok(fresh) => {
                                    connection = fresh;
                                    *identity = file_identity(path);
                                    reopened_count.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!(
                                        path = %path.display(),
                                        "the SQLite file was removed or replaced while serving: opened it again"
                                    );
                                }
                                Err(error) => tracing::warn!(
                                    path = %path.display(),
                                    %error,
                                    "the SQLite file was removed or replaced and cannot be opened again"
                                ),
                            }
                        }
                    }
                    match job {
                        Job::Work(work) => {
                            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                work(&mut connection)
                            }));
                        }
                        Job::Sighting(sighting) => {
                            let mut sightings = vec![sighting];
                            while sightings.len() < SIGHTINGS_PER_COMMIT {
                                match receiver.try_recv() {
                                    Ok(Job::Sighting(sighting)) => sightings.push(sighting),
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            record_sightings(&mut connection, sightings);
                        }
                    }
                }
            })
            .map_err(|error| StoreError::Stopped(error.to_string()))?;
        Ok(SqliteStore { jobs, reopened })
    }

    /// Times the database file was found removed or replaced and opened again (for `/metrics`).
    pub fn reopened(&self) -> u64 {
        self.reopened.load(Ordering::Relaxed)
    }

    /// Runs `work` on the connection's thread.
    async fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Work(Box::new(move |connection| {
                let _ = reply.send(work(connection));
            })))
            .map_err(|_| StoreError::Stopped("the SQLite thread stopped".to_string()))?;
        answer.await.map_err(|_| {
            StoreError::Stopped("a database call panicked or the SQLite thread stopped".to_string())
        })?
    }
}

/// Records replay checks in one transaction and answers each: `true` for an id seen for the first
/// time. A failure (or a panic) answers every one of them with the error.
fn record_sightings(connection: &mut Connection, sightings: Vec<Sighting>) {
    let recorded = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut first = Vec::with_capacity(sightings.len());
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO seen_interactions (id, at_unix) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING",
            )?;
            for sighting in &sightings {
                first.push(insert.execute(params![sighting.id, sighting.now_unix])? == 1);
            }
        }
        transaction.commit()?;
        Ok::<_, StoreError>(first)
    }));
    match recorded {
        Ok(Ok(first)) => {
            for (sighting, first) in sightings.into_iter().zip(first) {
                let _ = sighting.reply.send(Ok(first));
            }
        }
        Ok(Err(error)) => {
            let message = error.to_string();
            for sighting in sightings {
                let _ = sighting
                    .reply
                    .send(Err(StoreError::Unavailable(message.clone())));
            }
        }
        Err(_) => {
            for sighting in sightings {
                let _ = sighting.reply.send(Err(StoreError::Stopped(
                    "a replay check panicked".to_string(),
                )));
            }
        }
    }
}

/// Opens the file (creating it) and prepares it for use.
fn open_file(path: &Path) -> Result<Connection, StoreError> {
    let mut connection = Connection::open(path)?;
    configure(&mut connection)?;
    Ok(connection)
}

/// A busy timeout, WAL and the migrations. WAL lets readers (reports) run while the bot writes;
/// failure to set it on read-only media is ignored. With WAL, NORMAL syncs at checkpoints rather
/// than at every commit: a power cut may lose the last moments of analytics, never corrupt the
/// file.
fn configure(connection: &mut Connection) -> Result<(), StoreError> {
    connection.busy_timeout(Duration::from_millis(250))?;
    let _ = connection.pragma_update(None, "journal_mode", "WAL");
    let _ = connection.pragma_update(None, "synchronous", "NORMAL");
    migrate(connection)?;
    Ok(())
}

/// Applies the migrations newer than `PRAGMA user_version`, each in its own transaction.
fn migrate(connection: &mut Connection) -> Result<usize, StoreError> {
    let current: i32 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let mut applied = 0;
    for migration in SQLITE_MIGRATIONS
        .iter()
        .filter(|migration| migration.version > current)
    {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute_batch(migration.sql)?;
        transaction.pragma_update(None, "user_version", migration.version)?;
        transaction.commit()?;
        applied += 1;
    }
    Ok(applied)
}

fn write_one(connection: &Connection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Question(record) => insert_question(connection, record),
        Write::Feedback(record) => {
            connection
                .prepare_cached(
                    "INSERT INTO feedback (at_unix, user_hash, answer_key, helpful) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![record.at_unix, record.user_hash, record.answer_key, record.helpful])?;
            Ok(())
        }
        Write::Escalation(record) => {
            connection
                .prepare_cached(
                    "INSERT INTO escalations (at_unix, user_hash, guild_hash, answer_key) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![record.at_unix, record.user_hash, record.guild_hash, record.answer_key])?;
            Ok(())
        }
        Write::Tokens { .. } | Write::Usage { .. } => {
            for (scope, day, requests, tokens) in write.usage_added() {
                add_usage(connection, &scope, day, requests, tokens)?;
            }
            Ok(())
        }
        Write::SeenInteractions { ids, at_unix } => {
            let mut insert = connection.prepare_cached(
                "INSERT INTO seen_interactions (id, at_unix) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING",
            )?;
            for id in ids {
                insert.execute(params![id.to_string(), at_unix])?;
            }
            Ok(())
        }
        Write::CachedAnswer(cached) => {
            connection
                .prepare_cached(
                    "INSERT INTO answer_cache (key, at_unix, answer) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET at_unix = excluded.at_unix, answer = excluded.answer
                 WHERE excluded.at_unix >= answer_cache.at_unix",
                )?
                .execute(params![cached.key, cached.at_unix, cached.answer_json])?;
            Ok(())
        }
    }
}

fn insert_question(connection: &Connection, record: &QuestionRecord) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO questions (at_unix, day, user_hash, guild_hash, command, question, normalized, refused, mode, top_coverage, answer_key, citations, fingerprint)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            record.at_unix,
            day_of(record.at_unix),
            record.user_hash,
            record.guild_hash,
            record.command,
            record.question,
            super::normalize_question(&record.question),
            record.refused,
            record.mode,
            record.top_coverage.map(f64::from),
            record.answer_key,
            record.citations.join("\n"),
            record.fingerprint,
        ])?;
    Ok(())
}

fn add_usage(
    connection: &Connection,
    scope: &str,
    day: &str,
    requests: i64,
    tokens: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO usage (scope, day, requests, tokens) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(scope, day) DO UPDATE SET requests = requests + excluded.requests, tokens = tokens + excluded.tokens",
        )?
        .execute(params![scope, day, requests, tokens])?;
    Ok(())
}

fn claim(connection: &mut Connection, claim: &LlmClaim) -> Result<ClaimOutcome, StoreError> {
    // IMMEDIATE: the write lock is taken up front, so two processes sharing the file serialize.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for limit in &claim.scopes {
        let (max_requests, max_tokens) = limit.bounds();
        let charged: Option<i64> = transaction
            .query_row(
                "INSERT INTO usage (scope, day, requests, tokens) VALUES (?1, ?2, 1, 0)
                 ON CONFLICT(scope, day) DO UPDATE SET requests = usage.requests + 1
                 WHERE usage.requests < ?3 AND usage.tokens < ?4
                 RETURNING requests",
                params![limit.scope.key(), claim.day, max_requests, max_tokens],
                |row| row.get(0),
            )
            .optional()?;
        if charged.is_none() {
            return Ok(ClaimOutcome::OverBudget); // dropping the transaction rolls back
        }
    }
    if let Some(cooldown) = &claim.cooldown {
        let length = cooldown.length.as_millis().min(i64::MAX as u128) as i64;
        let taken: Option<i64> = transaction
            .query_row(
                "INSERT INTO llm_cooldowns (user_hash, at_millis) VALUES (?1, ?2)
                 ON CONFLICT(user_hash) DO UPDATE SET at_millis = excluded.at_millis
                 WHERE llm_cooldowns.at_millis <= ?3
                 RETURNING at_millis",
                params![
                    cooldown.user_hash,
                    cooldown.now_millis,
                    cooldown.now_millis.saturating_sub(length)
                ],
                |row| row.get(0),
            )
            .optional()?;
        if taken.is_none() {
            return Ok(ClaimOutcome::Throttled);
        }
    }
    transaction.commit()?;
    Ok(ClaimOutcome::Allowed)
}

fn report(connection: &Connection, since_days: u32, now_unix: i64) -> Result<Report, StoreError> {
    let since = days_before(now_unix, since_days);
    let (questions, refused) = connection.query_row(
        "SELECT COUNT(*), COALESCE(SUM(refused), 0) FROM questions WHERE at_unix >= ?1",
        params![since],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let (helpful, not_helpful) = connection.query_row(
        "SELECT COALESCE(SUM(helpful), 0), COALESCE(SUM(1 - helpful), 0) FROM feedback WHERE at_unix >= ?1",
        params![since],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let lists = [
        "SELECT day, COUNT(*) FROM questions WHERE at_unix >= ?1 GROUP BY day ORDER BY day",
        "SELECT MIN(question), COUNT(*) AS asked FROM questions WHERE at_unix >= ?1
         GROUP BY normalized ORDER BY asked DESC, MIN(at_unix) LIMIT 10",
        "SELECT MIN(question), COUNT(*) FROM questions WHERE at_unix >= ?1 AND refused = 1
         GROUP BY normalized ORDER BY COUNT(*) DESC, MIN(at_unix) LIMIT 50",
        "SELECT MIN(q.question), COUNT(*) FROM feedback f JOIN questions q ON q.answer_key = f.answer_key
         WHERE f.at_unix >= ?1 AND f.helpful = 0 GROUP BY q.normalized ORDER BY COUNT(*) DESC, MIN(q.at_unix) LIMIT 50",
    ]
    .map(|sql| pairs(connection, sql, params![since]));
    let lists: Vec<_> = lists.into_iter().collect::<Result<_, _>>()?;
    let counts = [questions, refused, helpful, not_helpful];
    Ok(Report::from_counts(since_days, counts, lists))
}

/// The `(text, count)` rows `sql` selects.
fn pairs(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut statement = connection.prepare(sql)?;
    let rows = statement.query_map(params, |row| Ok((row.get(0)?, stored_count(row.get(1)?))))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn dump(connection: &Connection) -> Result<Dump, StoreError> {
    let mut statement = connection.prepare(
        "SELECT at_unix, user_hash, guild_hash, command, question, refused, mode, top_coverage, answer_key, citations, fingerprint
         FROM questions ORDER BY id",
    )?;
    let questions = statement
        .query_map([], |row| {
            let citations: String = row.get(9)?;
            Ok(QuestionRecord {
                at_unix: row.get(0)?,
                user_hash: row.get(1)?,
                guild_hash: row.get(2)?,
                command: row.get(3)?,
                question: row.get(4)?,
                refused: row.get(5)?,
                mode: row.get(6)?,
                top_coverage: row.get::<_, Option<f64>>(7)?.map(|value| value as f32),
                answer_key: row.get(8)?,
                citations: stored_citations(&citations),
                fingerprint: row.get(10)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut statement = connection
        .prepare("SELECT at_unix, user_hash, answer_key, helpful FROM feedback ORDER BY id")?;
    let feedback = statement
        .query_map([], |row| {
            Ok(FeedbackRecord {
                at_unix: row.get(0)?,
                user_hash: row.get(1)?,
                answer_key: row.get(2)?,
                helpful: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut statement =
        connection.prepare("SELECT scope, day, requests, tokens FROM usage ORDER BY scope, day")?;
    let usage = statement
        .query_map([], |row| {
            Ok(UsageRecord {
                scope: row.get(0)?,
                day: row.get(1)?,
                usage: Usage::stored(row.get(2)?, row.get(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut statement =
        connection.prepare("SELECT key, at_unix, answer FROM answer_cache ORDER BY key")?;
    let cache = statement
        .query_map([], |row| {
            Ok(CachedAnswerRecord {
                key: row.get(0)?,
                at_unix: row.get(1)?,
                answer_json: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut statement = connection.prepare(
        "SELECT at_unix, user_hash, guild_hash, answer_key FROM escalations ORDER BY id",
    )?;
    let escalations = statement
        .query_map([], |row| {
            Ok(EscalationRecord {
                at_unix: row.get(0)?,
                user_hash: row.get(1)?,
                guild_hash: row.get(2)?,
                answer_key: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Dump {
        questions,
        feedback,
        usage,
        cache,
        escalations,
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn reopened(&self) -> u64 {
        SqliteStore::reopened(self)
    }

    async fn migrate(&self) -> Result<usize, StoreError> {
        self.call(migrate).await
    }

    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError> {
        let writes = writes.to_vec();
        self.call(move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for write in &writes {
                write_one(&transaction, write)?;
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn claim_llm(&self, llm_claim: &LlmClaim) -> Result<ClaimOutcome, StoreError> {
        if llm_claim.is_closed() {
            return Ok(ClaimOutcome::OverBudget);
        }
        let llm_claim = llm_claim.clone();
        self.call(move |connection| claim(connection, &llm_claim))
            .await
    }

    async fn usage(&self, scope: &BudgetScope, day: &str) -> Result<Usage, StoreError> {
        let (scope, day) = (scope.key(), day.to_string());
        self.call(move |connection| {
            let usage = connection
                .query_row(
                    "SELECT requests, tokens FROM usage WHERE scope = ?1 AND day = ?2",
                    params![scope, day],
                    |row| Ok(Usage::stored(row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            Ok(usage.unwrap_or_default())
        })
        .await
    }

    async fn cached_answer_json(
        &self,
        key: &str,
        oldest_unix: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let key = key.to_string();
        self.call(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT at_unix, answer FROM answer_cache WHERE key = ?1 AND at_unix >= ?2",
                    params![key, oldest_unix],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?)
        })
        .await
    }

    async fn first_sighting(
        &self,
        interaction_id: &str,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Sighting(Sighting {
                id: interaction_id.to_string(),
                now_unix,
                reply,
            }))
            .map_err(|_| StoreError::Stopped("the SQLite thread stopped".to_string()))?;
        answer.await.map_err(|_| {
            StoreError::Stopped("a database call panicked or the SQLite thread stopped".to_string())
        })?
    }

    async fn interaction_ids_between(&self, first: u64, last: u64) -> Result<Vec<u64>, StoreError> {
        self.call(move |connection| {
            let mut ids = Vec::new();
            let mut select = connection.prepare_cached(
                "SELECT id FROM seen_interactions WHERE id >= ?1 AND id <= ?2 AND length(id) = ?3",
            )?;
            for (length, low, high) in decimal_ranges(first, last) {
                let rows =
                    select.query_map(params![low, high, length], |row| row.get::<_, String>(0))?;
                for id in rows {
                    ids.extend(parse_snowflake(&id?));
                }
            }
            Ok(ids)
        })
        .await
    }

    async fn purge_older_than(&self, days: u32, now_unix: i64) -> Result<usize, StoreError> {
        let cutoff = days_before(now_unix, days);
        let cutoff_day = day_of(cutoff);
        let short_cutoff = now_unix - SHORT_LIVED_KEEP.as_secs() as i64;
        self.call(move |connection| {
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
            for table in ["escalations", "conversation_turns", "conversation_links"] {
                deleted += connection.execute(
                    &format!("DELETE FROM {table} WHERE at_unix < ?1"),
                    params![cutoff],
                )?;
            }
            deleted += connection.execute(
                "DELETE FROM seen_interactions WHERE at_unix < ?1",
                params![short_cutoff],
            )?;
            deleted += connection.execute(
                "DELETE FROM llm_cooldowns WHERE at_millis < ?1",
                params![short_cutoff.saturating_mul(1000)],
            )?;
            Ok(deleted)
        })
        .await
    }

    async fn report(&self, since_days: u32, now_unix: i64) -> Result<Report, StoreError> {
        self.call(move |connection| report(connection, since_days, now_unix))
            .await
    }

    async fn guild_stats(
        &self,
        guild_hash: &str,
        since_days: u32,
        now_unix: i64,
    ) -> Result<GuildStats, StoreError> {
        let (guild, since) = (guild_hash.to_string(), days_before(now_unix, since_days));
        self.call(move |connection| {
            let (questions, refused) = connection.query_row(
                "SELECT COUNT(*), COALESCE(SUM(refused), 0) FROM questions WHERE at_unix >= ?1 AND guild_hash = ?2",
                params![since, guild],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let (helpful, not_helpful) = connection.query_row(
                "SELECT COALESCE(SUM(helpful), 0), COALESCE(SUM(1 - helpful), 0) FROM feedback
                 WHERE at_unix >= ?1 AND answer_key IN (SELECT answer_key FROM questions WHERE guild_hash = ?2 AND answer_key IS NOT NULL)",
                params![since, guild],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let escalations = connection.query_row(
                "SELECT COUNT(*) FROM escalations WHERE at_unix >= ?1 AND guild_hash = ?2",
                params![since, guild],
                |row| row.get(0),
            )?;
            let top_unanswered = pairs(
                connection,
                "SELECT MIN(question), COUNT(*) FROM questions WHERE at_unix >= ?1 AND guild_hash = ?2 AND refused = 1
                 GROUP BY normalized ORDER BY COUNT(*) DESC, MIN(at_unix) LIMIT 5",
                params![since, guild],
            )?;
            let counts = [questions, refused, helpful, not_helpful, escalations];
            Ok(GuildStats::from_counts(counts, top_unanswered))
        })
        .await
    }

    async fn dump(&self) -> Result<Dump, StoreError> {
        self.call(|connection| dump(connection)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.call(|connection| {
            // Reads the file (its header and schema page): `SELECT 1` answers from memory, so a
            // file damaged while serving looked healthy to /readyz.
            connection.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn conversation_turns(
        &self,
        conversation: &str,
        turns: usize,
        oldest_unix: i64,
    ) -> Result<Vec<PriorTurn>, StoreError> {
        let conversation = conversation.to_string();
        let limit = sql_limit(turns);
        self.call(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT question, standalone, answer FROM (
                     SELECT id, at_unix, question, standalone, answer FROM conversation_turns
                     WHERE conversation = ?1 AND at_unix >= ?2 ORDER BY at_unix DESC, id DESC LIMIT ?3
                 ) AS recent ORDER BY at_unix, id",
            )?;
            let turns = statement
                .query_map(params![conversation, oldest_unix, limit], |row| {
                    Ok(PriorTurn {
                        question: row.get(0)?,
                        standalone: row.get(1)?,
                        answer: row.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(turns)
        })
        .await
    }

    async fn record_turn(
        &self,
        conversation: &str,
        turn: &PriorTurn,
        at_unix: i64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let (conversation, turn) = (conversation.to_string(), turn.clone());
        let keep = sql_limit(keep);
        self.call(move |connection| {
            let transaction =
                connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction
                .prepare_cached(
                    "INSERT INTO conversation_turns (conversation, at_unix, question, standalone, answer)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    conversation,
                    at_unix,
                    turn.question,
                    turn.standalone,
                    turn.answer
                ])?;
            transaction
                .prepare_cached(
                    "DELETE FROM conversation_turns WHERE conversation = ?1 AND id NOT IN (
                         SELECT id FROM conversation_turns WHERE conversation = ?1
                         ORDER BY at_unix DESC, id DESC LIMIT ?2)",
                )?
                .execute(params![conversation, keep])?;
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    async fn conversation_active_since(
        &self,
        conversation: &str,
        oldest_unix: i64,
    ) -> Result<bool, StoreError> {
        let conversation = conversation.to_string();
        self.call(move |connection| {
            Ok(connection
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM conversation_turns WHERE conversation = ?1 AND at_unix >= ?2)",
                )?
                .query_row(params![conversation, oldest_unix], |row| row.get(0))?)
        })
        .await
    }

    async fn link_message(
        &self,
        message: &str,
        conversation: ConversationKey,
        at_unix: i64,
    ) -> Result<(), StoreError> {
        let message = message.to_string();
        self.call(move |connection| {
            connection
                .prepare_cached(
                    "INSERT INTO conversation_links (message, kind, conversation_id, at_unix) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(message) DO UPDATE SET kind = excluded.kind,
                         conversation_id = excluded.conversation_id, at_unix = excluded.at_unix",
                )?
                .execute(params![
                    message,
                    conversation.kind(),
                    conversation.stored_id(),
                    at_unix
                ])?;
            Ok(())
        })
        .await
    }

    async fn linked_conversation(
        &self,
        message: &str,
        oldest_unix: i64,
    ) -> Result<Option<ConversationKey>, StoreError> {
        let message = message.to_string();
        self.call(move |connection| {
            let stored: Option<(String, i64)> = connection
                .prepare_cached(
                    "SELECT kind, conversation_id FROM conversation_links WHERE message = ?1 AND at_unix >= ?2",
                )?
                .query_row(params![message, oldest_unix], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            stored
                .map(|(kind, id)| ConversationKey::from_stored(&kind, id))
                .transpose()
        })
        .await
    }
}
