//! Versioned schema migrations for both backends, applied at start-up in order. SQLite records
//! the version in `PRAGMA user_version`; PostgreSQL in `guidebot_migrations`, under a
//! transaction-scoped advisory lock so that of several replicas starting at once exactly one
//! applies them and the others find them done.
//!
//! Never edit a released migration: add a new one with the next version.

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// 1, 2, 3... in order, no gaps.
    pub version: i32,
    /// What it does, for the migrations table and logs.
    pub name: &'static str,
    /// The statements, run as one batch.
    pub sql: &'static str,
}

/// What each version does, for the migrations table and logs: the same in both backends.
const NAMES: [&str; 4] = [
    "questions, feedback, usage, answer cache",
    "cooldowns and seen interaction ids",
    "conversation turns and message links",
    "hand-offs to helpers",
];

/// Migration `version` (from 1) with its name from [`NAMES`].
const fn step(version: i32, sql: &'static str) -> Migration {
    let name = NAMES[version as usize - 1];
    Migration { version, name, sql }
}

/// SQLite. Version 1 is the schema from before migrations (`IF NOT EXISTS`, so an existing file is
/// adopted as it is).
pub const SQLITE_MIGRATIONS: &[Migration] = &[
    step(
        1,
        "
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
);",
    ),
    step(
        2,
        "
CREATE TABLE IF NOT EXISTS llm_cooldowns (
    user_hash TEXT PRIMARY KEY,
    at_millis INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_interactions (
    id TEXT PRIMARY KEY,
    at_unix INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_interactions_at ON seen_interactions(at_unix);",
    ),
    step(
        3,
        "
CREATE TABLE IF NOT EXISTS conversation_turns (
    id INTEGER PRIMARY KEY,
    conversation TEXT NOT NULL,
    at_unix INTEGER NOT NULL,
    question TEXT NOT NULL,
    standalone TEXT NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversation_turns_key ON conversation_turns(conversation, at_unix);
CREATE INDEX IF NOT EXISTS conversation_turns_at ON conversation_turns(at_unix);
CREATE TABLE IF NOT EXISTS conversation_links (
    message TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    conversation_id INTEGER NOT NULL,
    at_unix INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversation_links_at ON conversation_links(at_unix);",
    ),
    step(
        4,
        "
CREATE TABLE IF NOT EXISTS escalations (
    id INTEGER PRIMARY KEY,
    at_unix INTEGER NOT NULL,
    user_hash TEXT NOT NULL,
    guild_hash TEXT NOT NULL,
    answer_key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS escalations_guild ON escalations(guild_hash, at_unix);
CREATE INDEX IF NOT EXISTS escalations_at ON escalations(at_unix);",
    ),
];

/// PostgreSQL.
pub const POSTGRES_MIGRATIONS: &[Migration] = &[
    step(
        1,
        "
CREATE TABLE questions (
    id BIGSERIAL PRIMARY KEY,
    at_unix BIGINT NOT NULL,
    day TEXT NOT NULL,
    user_hash TEXT NOT NULL,
    guild_hash TEXT,
    command TEXT NOT NULL,
    question TEXT NOT NULL,
    normalized TEXT NOT NULL,
    refused BOOLEAN NOT NULL,
    mode TEXT NOT NULL,
    top_coverage DOUBLE PRECISION,
    answer_key TEXT,
    citations TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE INDEX questions_at ON questions(at_unix);
CREATE INDEX questions_answer_key ON questions(answer_key);
CREATE TABLE feedback (
    id BIGSERIAL PRIMARY KEY,
    at_unix BIGINT NOT NULL,
    user_hash TEXT NOT NULL,
    answer_key TEXT NOT NULL,
    helpful BOOLEAN NOT NULL,
    UNIQUE (user_hash, answer_key)
);
CREATE INDEX feedback_at ON feedback(at_unix);
CREATE TABLE usage (
    scope TEXT NOT NULL,
    day TEXT NOT NULL,
    requests BIGINT NOT NULL,
    tokens BIGINT NOT NULL,
    PRIMARY KEY (scope, day)
);
CREATE TABLE answer_cache (
    key TEXT PRIMARY KEY,
    at_unix BIGINT NOT NULL,
    answer TEXT NOT NULL
);",
    ),
    step(
        2,
        "
CREATE TABLE llm_cooldowns (
    user_hash TEXT PRIMARY KEY,
    at_millis BIGINT NOT NULL
);
CREATE TABLE seen_interactions (
    id TEXT PRIMARY KEY,
    at_unix BIGINT NOT NULL
);
CREATE INDEX seen_interactions_at ON seen_interactions(at_unix);",
    ),
    step(
        3,
        "
CREATE TABLE conversation_turns (
    id BIGSERIAL PRIMARY KEY,
    conversation TEXT NOT NULL,
    at_unix BIGINT NOT NULL,
    question TEXT NOT NULL,
    standalone TEXT NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX conversation_turns_key ON conversation_turns(conversation, at_unix);
CREATE INDEX conversation_turns_at ON conversation_turns(at_unix);
CREATE TABLE conversation_links (
    message TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    conversation_id BIGINT NOT NULL,
    at_unix BIGINT NOT NULL
);
CREATE INDEX conversation_links_at ON conversation_links(at_unix);",
    ),
    step(
        4,
        "
CREATE TABLE escalations (
    id BIGSERIAL PRIMARY KEY,
    at_unix BIGINT NOT NULL,
    user_hash TEXT NOT NULL,
    guild_hash TEXT NOT NULL,
    answer_key TEXT NOT NULL
);
CREATE INDEX escalations_guild ON escalations(guild_hash, at_unix);
CREATE INDEX escalations_at ON escalations(at_unix);",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one_in_both_backends() {
        for migrations in [SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS] {
            for (index, migration) in migrations.iter().enumerate() {
                assert_eq!(migration.version as usize, index + 1, "{}", migration.name);
            }
        }
        assert_eq!(SQLITE_MIGRATIONS.len(), POSTGRES_MIGRATIONS.len());
    }
}
