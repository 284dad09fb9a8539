//! The shared backend: PostgreSQL through `tokio-postgres` with a `deadpool-postgres` pool, so any
//! number of replicas share budgets, cooldowns, replayed ids, analytics and the answer cache.
//!
//! The pool connects lazily and reconnects by itself: a connection that broke is dropped and the
//! next call opens a new one (each attempt bounded by the connect timeout), so a database that comes
//! back is used again without a restart. Budgets are charged with one conditional
//! `INSERT … ON CONFLICT … DO UPDATE … WHERE … RETURNING` per scope inside a transaction: the row
//! lock makes concurrent claims from any process queue, and a claim that would pass a limit
//! changes nothing.

use super::migrations::POSTGRES_MIGRATIONS;
use super::replay::parse_snowflake;
use super::{
    days_before, decimal_ranges, sql_limit, stored_citations, stored_count, Backend, BudgetScope,
    CachedAnswerRecord, ClaimOutcome, ConversationKey, Dump, EscalationRecord, FeedbackRecord,
    GuildStats, LlmClaim, QuestionRecord, Report, Store, StoreError, Usage, UsageRecord, Write,
    SHORT_LIVED_KEEP,
};
use crate::engine::PriorTurn;
use crate::util::clock::{day_of, now_unix};
use crate::util::secret::Secret;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::NoTls;

/// Key of the advisory lock that serializes migrations across replicas ("guidebot" in ASCII).
const MIGRATION_LOCK: i64 = 0x6775_6964_6562_6f74;
/// How long one connection attempt, or a wait for a free connection, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections per process.
const POOL_SIZE: usize = 16;

/// A PostgreSQL database shared by every replica.
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// A pool for `url` (`postgres://user@host:port/db`); `password`, when given, replaces any in
    /// the URL. Connects nothing yet: the first call (normally [`Store::migrate`]) does.
    pub fn connect(url: &Secret, password: Option<&Secret>) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url.expose().parse().map_err(|_| {
            // The parser's message may quote the URL, password included: say only what to fix.
            StoreError::Open {
                path: crate::util::secret::mask_url_credentials(url.expose()),
                message: "not a valid PostgreSQL URL (postgres://user@host:5432/database)"
                    .to_string(),
            }
        })?;
        if let Some(password) = password {
            config.password(password.expose());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("guidebot");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        Ok(PostgresStore { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))
    }
}

async fn write_one(client: &impl GenericClient, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Question(record) => insert_question(client, record).await,
        Write::Feedback(record) => {
            client
                .execute(
                    "INSERT INTO feedback (at_unix, user_hash, answer_key, helpful) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_hash, answer_key) DO UPDATE SET at_unix = excluded.at_unix, helpful = excluded.helpful",
                    &[&record.at_unix, &record.user_hash, &record.answer_key, &record.helpful],
                )
                .await?;
            Ok(())
        }
        Write::Escalation(record) => {
            client
                .execute(
                    "INSERT INTO escalations (at_unix, user_hash, guild_hash, answer_key) VALUES ($1, $2, $3, $4)",
                    &[&record.at_unix, &record.user_hash, &record.guild_hash, &record.answer_key],
                )
                .await?;
            Ok(())
        }
        Write::Tokens { .. } | Write::Usage { .. } => {
            for (scope, day, requests, tokens) in write.usage_added() {
                add_usage(client, &scope, day, requests, tokens).await?;
            }
            Ok(())
        }
        Write::SeenInteractions { ids, at_unix } => {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            client
                .execute(
                    "INSERT INTO seen_interactions (id, at_unix) SELECT unnest($1::text[]), $2
                     ON CONFLICT (id) DO NOTHING",
                    &[&ids, at_unix],
                )
                .await?;
            Ok(())
        }
        Write::CachedAnswer(cached) => {
            client
                .execute(
                    "INSERT INTO answer_cache (key, at_unix, answer) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET at_unix = excluded.at_unix, answer = excluded.answer
                     WHERE excluded.at_unix >= answer_cache.at_unix",
                    &[&cached.key, &cached.at_unix, &cached.answer_json],
                )
                .await?;
            Ok(())
        }
    }
}

async fn insert_question(
    client: &impl GenericClient,
    record: &QuestionRecord,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO questions (at_unix, day, user_hash, guild_hash, command, question, normalized, refused, mode, top_coverage, answer_key, citations, fingerprint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &record.at_unix,
                &day_of(record.at_unix),
                &record.user_hash,
                &record.guild_hash,
                &record.command,
                &record.question,
                &super::normalize_question(&record.question),
                &record.refused,
                &record.mode,
                &record.top_coverage.map(f64::from),
                &record.answer_key,
                &record.citations.join("\n"),
                &record.fingerprint,
            ],
        )
        .await?;
    Ok(())
}

async fn add_usage(
    client: &impl GenericClient,
    scope: &str,
    day: &str,
    requests: i64,
    tokens: i64,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO usage (scope, day, requests, tokens) VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope, day) DO UPDATE SET requests = usage.requests + excluded.requests, tokens = usage.tokens + excluded.tokens",
            &[&scope, &day, &requests, &tokens],
        )
        .await?;
    Ok(())
}

async fn pairs(
    client: &impl GenericClient,
    sql: &str,
    since: i64,
) -> Result<Vec<(String, u64)>, StoreError> {
    Ok(client
        .query(sql, &[&since])
        .await?
        .iter()
        .map(|row| (row.get::<_, String>(0), stored_count(row.get(1))))
        .collect())
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        // Held until commit: a second replica waits here, then finds every migration applied.
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS guidebot_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at_unix BIGINT NOT NULL
                )",
            )
            .await?;
        let applied: Vec<i32> = transaction
            .query("SELECT version FROM guidebot_migrations", &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut count = 0;
        for migration in POSTGRES_MIGRATIONS
            .iter()
            .filter(|migration| !applied.contains(&migration.version))
        {
            transaction.batch_execute(migration.sql).await?;
            transaction
                .execute(
                    "INSERT INTO guidebot_migrations (version, name, applied_at_unix) VALUES ($1, $2, $3)",
                    &[&migration.version, &migration.name, &now_unix()],
                )
                .await?;
            count += 1;
        }
        transaction.commit().await?;
        Ok(count)
    }

    async fn write_batch(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        for write in writes {
            write_one(&transaction, write).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn claim_llm(&self, claim: &LlmClaim) -> Result<ClaimOutcome, StoreError> {
        if claim.is_closed() {
            return Ok(ClaimOutcome::OverBudget);
        }
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        // Scopes in a fixed order (user, then guild) in every process: no deadlock between claims.
        for limit in &claim.scopes {
            let (max_requests, max_tokens) = limit.bounds();
            let charged = transaction
                .query_opt(
                    "INSERT INTO usage (scope, day, requests, tokens) VALUES ($1, $2, 1, 0)
                     ON CONFLICT (scope, day) DO UPDATE SET requests = usage.requests + 1
                     WHERE usage.requests < $3 AND usage.tokens < $4
                     RETURNING requests",
                    &[&limit.scope.key(), &claim.day, &max_requests, &max_tokens],
                )
                .await?;
            if charged.is_none() {
                transaction.rollback().await?;
                return Ok(ClaimOutcome::OverBudget);
            }
        }
        if let Some(cooldown) = &claim.cooldown {
            let length = cooldown.length.as_millis().min(i64::MAX as u128) as i64;
            let taken = transaction
                .query_opt(
                    "INSERT INTO llm_cooldowns (user_hash, at_millis) VALUES ($1, $2)
                     ON CONFLICT (user_hash) DO UPDATE SET at_millis = excluded.at_millis
                     WHERE llm_cooldowns.at_millis <= $3
                     RETURNING at_millis",
                    &[
                        &cooldown.user_hash,
                        &cooldown.now_millis,
                        &cooldown.now_millis.saturating_sub(length),
                    ],
                )
                .await?;
            if taken.is_none() {
                transaction.rollback().await?;
                return Ok(ClaimOutcome::Throttled);
            }
        }
        transaction.commit().await?;
        Ok(ClaimOutcome::Allowed)
    }

    async fn usage(&self, scope: &BudgetScope, day: &str) -> Result<Usage, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT requests, tokens FROM usage WHERE scope = $1 AND day = $2",
                &[&scope.key(), &day],
            )
            .await?;
        Ok(row.map_or_else(Usage::default, |row| Usage::stored(row.get(0), row.get(1))))
    }

    async fn cached_answer_json(
        &self,
        key: &str,
        oldest_unix: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT at_unix, answer FROM answer_cache WHERE key = $1 AND at_unix >= $2",
                &[&key, &oldest_unix],
            )
            .await?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    async fn first_sighting(
        &self,
        interaction_id: &str,
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO seen_interactions (id, at_unix) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                &[&interaction_id, &now_unix],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn interaction_ids_between(&self, first: u64, last: u64) -> Result<Vec<u64>, StoreError> {
        let client = self.client().await?;
        let mut ids = Vec::new();
        for (length, low, high) in decimal_ranges(first, last) {
            // Byte order ("C"), whatever the database's collation: within one length it is number order.
            let rows = client
                .query(
                    "SELECT id FROM seen_interactions
                     WHERE id COLLATE \"C\" >= $1 AND id COLLATE \"C\" <= $2 AND length(id) = $3",
                    &[&low, &high, &(length as i32)],
                )
                .await?;
            ids.extend(rows.iter().filter_map(|row| parse_snowflake(row.get(0))));
        }
        Ok(ids)
    }

    async fn purge_older_than(&self, days: u32, now_unix: i64) -> Result<usize, StoreError> {
        let cutoff = days_before(now_unix, days);
        let cutoff_day = day_of(cutoff);
        let short_cutoff = now_unix - SHORT_LIVED_KEEP.as_secs() as i64;
        let client = self.client().await?;
        let mut deleted = 0;
        for (sql, bound) in [
            ("DELETE FROM questions WHERE at_unix < $1", cutoff),
            ("DELETE FROM feedback WHERE at_unix < $1", cutoff),
            ("DELETE FROM escalations WHERE at_unix < $1", cutoff),
            ("DELETE FROM answer_cache WHERE at_unix < $1", cutoff),
            ("DELETE FROM conversation_turns WHERE at_unix < $1", cutoff),
            ("DELETE FROM conversation_links WHERE at_unix < $1", cutoff),
            (
                "DELETE FROM seen_interactions WHERE at_unix < $1",
                short_cutoff,
            ),
            (
                "DELETE FROM llm_cooldowns WHERE at_millis < $1",
                short_cutoff.saturating_mul(1000),
            ),
        ] {
            deleted += client.execute(sql, &[&bound]).await?;
        }
        deleted += client
            .execute("DELETE FROM usage WHERE day < $1", &[&cutoff_day])
            .await?;
        Ok(deleted as usize)
    }

    async fn report(&self, since_days: u32, now_unix: i64) -> Result<Report, StoreError> {
        let since = days_before(now_unix, since_days);
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE refused) FROM questions WHERE at_unix >= $1",
                &[&since],
            )
            .await?;
        let (questions, refused) = (row.get(0), row.get(1));
        let row = client
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE helpful), COUNT(*) FILTER (WHERE NOT helpful) FROM feedback WHERE at_unix >= $1",
                &[&since],
            )
            .await?;
        let counts = [questions, refused, row.get(0), row.get(1)];
        let mut lists = Vec::new();
        for sql in [
            "SELECT day, COUNT(*) FROM questions WHERE at_unix >= $1 GROUP BY day ORDER BY day",
            "SELECT MIN(question), COUNT(*) AS asked FROM questions WHERE at_unix >= $1
             GROUP BY normalized ORDER BY asked DESC, MIN(at_unix) LIMIT 10",
            "SELECT MIN(question), COUNT(*) FROM questions WHERE at_unix >= $1 AND refused
             GROUP BY normalized ORDER BY COUNT(*) DESC, MIN(at_unix) LIMIT 50",
            "SELECT MIN(q.question), COUNT(*) FROM feedback f JOIN questions q ON q.answer_key = f.answer_key
             WHERE f.at_unix >= $1 AND NOT f.helpful GROUP BY q.normalized ORDER BY COUNT(*) DESC, MIN(q.at_unix) LIMIT 50",
        ] {
            lists.push(pairs(&client, sql, since).await?);
        }
        Ok(Report::from_counts(since_days, counts, lists))
    }

    async fn guild_stats(
        &self,
        guild_hash: &str,
        since_days: u32,
        now_unix: i64,
    ) -> Result<GuildStats, StoreError> {
        let since = days_before(now_unix, since_days);
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE refused) FROM questions WHERE at_unix >= $1 AND guild_hash = $2",
                &[&since, &guild_hash],
            )
            .await?;
        let (questions, refused) = (row.get(0), row.get(1));
        let row = client
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE helpful), COUNT(*) FILTER (WHERE NOT helpful) FROM feedback
                 WHERE at_unix >= $1 AND answer_key IN (SELECT answer_key FROM questions WHERE guild_hash = $2 AND answer_key IS NOT NULL)",
                &[&since, &guild_hash],
            )
            .await?;
        let (helpful, not_helpful) = (row.get(0), row.get(1));
        let escalations = client
            .query_one(
                "SELECT COUNT(*) FROM escalations WHERE at_unix >= $1 AND guild_hash = $2",
                &[&since, &guild_hash],
            )
            .await?
            .get(0);
        let counts = [questions, refused, helpful, not_helpful, escalations];
        let top_unanswered = client
            .query(
                "SELECT MIN(question), COUNT(*) FROM questions WHERE at_unix >= $1 AND guild_hash = $2 AND refused
                 GROUP BY normalized ORDER BY COUNT(*) DESC, MIN(at_unix) LIMIT 5",
                &[&since, &guild_hash],
            )
            .await?
            .iter()
            .map(|row| (row.get::<_, String>(0), stored_count(row.get(1))))
            .collect();
        Ok(GuildStats::from_counts(counts, top_unanswered))
    }

    async fn dump(&self) -> Result<Dump, StoreError> {
        let client = self.client().await?;
        let questions = client
            .query(
                "SELECT at_unix, user_hash, guild_hash, command, question, refused, mode, top_coverage, answer_key, citations, fingerprint
                 FROM questions ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|row| QuestionRecord {
                at_unix: row.get(0),
                user_hash: row.get(1),
                guild_hash: row.get(2),
                command: row.get(3),
                question: row.get(4),
                refused: row.get(5),
                mode: row.get(6),
                top_coverage: row.get::<_, Option<f64>>(7).map(|value| value as f32),
                answer_key: row.get(8),
                citations: stored_citations(row.get(9)),
                fingerprint: row.get(10),
            })
            .collect();
        let feedback = client
            .query(
                "SELECT at_unix, user_hash, answer_key, helpful FROM feedback ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|row| FeedbackRecord {
                at_unix: row.get(0),
                user_hash: row.get(1),
                answer_key: row.get(2),
                helpful: row.get(3),
            })
            .collect();
        let usage = client
            .query(
                "SELECT scope, day, requests, tokens FROM usage ORDER BY scope, day",
                &[],
            )
            .await?
            .iter()
            .map(|row| UsageRecord {
                scope: row.get(0),
                day: row.get(1),
                usage: Usage::stored(row.get(2), row.get(3)),
            })
            .collect();
        let cache = client
            .query(
                "SELECT key, at_unix, answer FROM answer_cache ORDER BY key",
                &[],
            )
            .await?
            .iter()
            .map(|row| CachedAnswerRecord {
                key: row.get(0),
                at_unix: row.get(1),
                answer_json: row.get(2),
            })
            .collect();
        let escalations = client
            .query(
                "SELECT at_unix, user_hash, guild_hash, answer_key FROM escalations ORDER BY id",
                &[],
            )
            .await?
            .iter()
            .map(|row| EscalationRecord {
                at_unix: row.get(0),
                user_hash: row.get(1),
                guild_hash: row.get(2),
                answer_key: row.get(3),
            })
            .collect();
        Ok(Dump {
            questions,
            feedback,
            usage,
            cache,
            escalations,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.query_one("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn conversation_turns(
        &self,
        conversation: &str,
        turns: usize,
        oldest_unix: i64,
    ) -> Result<Vec<PriorTurn>, StoreError> {
        let limit = sql_limit(turns);
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT question, standalone, answer FROM (
                     SELECT id, at_unix, question, standalone, answer FROM conversation_turns
                     WHERE conversation = $1 AND at_unix >= $2 ORDER BY at_unix DESC, id DESC LIMIT $3
                 ) AS recent ORDER BY at_unix, id",
                &[&conversation, &oldest_unix, &limit],
            )
            .await?
            .iter()
            .map(|row| PriorTurn {
                question: row.get(0),
                standalone: row.get(1),
                answer: row.get(2),
            })
            .collect())
    }

    async fn record_turn(
        &self,
        conversation: &str,
        turn: &PriorTurn,
        at_unix: i64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let keep = sql_limit(keep);
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        transaction
            .execute(
                "INSERT INTO conversation_turns (conversation, at_unix, question, standalone, answer)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &conversation,
                    &at_unix,
                    &turn.question,
                    &turn.standalone,
                    &turn.answer,
                ],
            )
            .await?;
        transaction
            .execute(
                "DELETE FROM conversation_turns WHERE conversation = $1 AND id NOT IN (
                     SELECT id FROM conversation_turns WHERE conversation = $1
                     ORDER BY at_unix DESC, id DESC LIMIT $2)",
                &[&conversation, &keep],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn conversation_active_since(
        &self,
        conversation: &str,
        oldest_unix: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM conversation_turns WHERE conversation = $1 AND at_unix >= $2)",
                &[&conversation, &oldest_unix],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn link_message(
        &self,
        message: &str,
        conversation: ConversationKey,
        at_unix: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO conversation_links (message, kind, conversation_id, at_unix) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (message) DO UPDATE SET kind = excluded.kind,
                     conversation_id = excluded.conversation_id, at_unix = excluded.at_unix",
                &[
                    &message,
                    &conversation.kind(),
                    &conversation.stored_id(),
                    &at_unix,
                ],
            )
            .await?;
        Ok(())
    }

    async fn linked_conversation(
        &self,
        message: &str,
        oldest_unix: i64,
    ) -> Result<Option<ConversationKey>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT kind, conversation_id FROM conversation_links WHERE message = $1 AND at_unix >= $2",
                &[&message, &oldest_unix],
            )
            .await?;
        row.map(|row| ConversationKey::from_stored(row.get(0), row.get(1)))
            .transpose()
    }
}
