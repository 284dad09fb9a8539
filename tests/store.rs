//! One behavioural suite, run against both backends: SQLite (a temporary file) and PostgreSQL (a
//! fresh database on the server named by `GUIDEBOT_TEST_POSTGRES_URL`; skipped with a line without
//! it). Feedback and analytics reach the report with hashed ids, budgets hold across a restart and
//! across concurrent claims from two handles (two replicas), cooldowns and replayed ids are shared,
//! the cache is keyed by the index fingerprint, retention deletes old rows, migrations run once,
//! the writer batches and drains, and an SQLite file moves into the other backend. Then the
//! failure cases: a locked or unreachable database never stops an answer and refuses LLM answers
//! while budgets cannot be checked.

mod support;

use guidebot::bot::conversation::{
    ConversationHistory, ConversationKey, HistoryLimits, StoreHistory, THREAD_MEMORY,
};
use guidebot::bot::dispatch::{Budgets, ResponderError};
use guidebot::bot::render::{Rendered, Reply};
use guidebot::bot::request::{BotRequest, Invocation};
use guidebot::bot::{BotSettings, Dispatcher, InteractionReport, NoObserver, Outcome, Responder};
use guidebot::corpus::Corpus;
use guidebot::engine::{Engine, EngineHandle, PriorTurn};
use guidebot::llm::LlmSettings;
use guidebot::store::{
    hash_id, Backend, BudgetScope, ClaimOutcome, Cooldown, EscalationRecord, LlmClaim,
    PostgresStore, QuestionRecord, ScopeLimit, SqliteStore, Storage, StorageOptions, Store,
    StoreReadiness, Write,
};
use guidebot::util::clock::{day_of, now_unix};
use guidebot::util::secret::Secret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_discord::snowflake_at;
use support::fake_llm::*;
use support::setup::{bundled_corpus_dir as bundled_dir, corpus_at};

const FLUSH: Duration = Duration::from_secs(10);

/// One database of either backend that tests can open several handles on (a restart, or a
/// second replica).
enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
    },
}

impl TestDb {
    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guidebot.sqlite");
        TestDb::Sqlite { _dir: dir, path }
    }

    async fn postgres(test: &str) -> Option<TestDb> {
        let url = support::postgres::fresh_database_for(test).await?;
        Some(TestDb::Postgres { url })
    }

    /// A new handle, migrated.
    async fn open(&self) -> Arc<dyn Store> {
        let store = self.open_unmigrated();
        store.migrate().await.expect("migrations");
        store
    }

    /// A new handle; PostgreSQL not migrated yet (SQLite migrates on open).
    fn open_unmigrated(&self) -> Arc<dyn Store> {
        match self {
            TestDb::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).unwrap()),
            TestDb::Postgres { url } => {
                Arc::new(PostgresStore::connect(&Secret::new(url.as_str()), None).unwrap())
            }
        }
    }
}

/// Runs each named behaviour once per backend: `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    feedback_and_questions_are_stored_with_hashed_ids,
    budgets_hold_across_a_restart,
    concurrent_claims_from_two_replicas_never_pass_the_daily_limit,
    cooldowns_and_replayed_ids_are_shared_between_replicas,
    cached_answers_skip_the_llm_until_the_corpus_changes,
    retention_deletes_old_rows,
    migrations_run_once_even_when_two_replicas_start_together,
    the_writer_commits_in_batches_and_drains_on_flush,
    an_sqlite_file_moves_into_the_other_database,
    report_exports_questions_to_label_in_the_eval_format,
    server_stats_come_from_the_shared_database,
    conversation_turns_are_kept_within_the_last_turns_and_the_age_limit,
    linked_messages_lead_back_to_their_conversation,
    retention_purges_conversations_with_the_analytics,
    a_thread_continues_on_another_replica_and_after_a_restart,
    a_burst_of_replay_checks_lets_each_id_through_once,
    replay_checks_through_storage_refuse_every_replay,
    recorded_interaction_ids_are_read_back_by_range,
    hand_offs_are_recorded_and_counted_per_server,
    retention_purges_hand_offs,
);

/// Records what the dispatcher sends, as JSON.
#[derive(Default)]
struct RecordingResponder {
    sent: Mutex<Vec<serde_json::Value>>,
}

impl Responder for RecordingResponder {
    async fn respond(&self, reply: Reply) -> Result<(), ResponderError> {
        let response = reply.to_interaction_response();
        self.sent
            .lock()
            .unwrap()
            .push(serde_json::to_value(&response).unwrap());
        Ok(())
    }
    async fn edit(&self, rendered: Rendered) -> Result<(), ResponderError> {
        self.sent
            .lock()
            .unwrap()
            .push(serde_json::to_value(rendered.to_edit()).unwrap());
        Ok(())
    }
}

/// A dispatcher over the bundled guides.
fn dispatcher(
    llm: Option<LlmSettings>,
    settings: BotSettings,
    store: Arc<dyn Store>,
) -> Dispatcher {
    dispatcher_on(corpus_at(&bundled_dir()), llm, settings, store)
}

/// A dispatcher over `corpus`.
fn dispatcher_on(
    corpus: Corpus,
    llm: Option<LlmSettings>,
    settings: BotSettings,
    store: Arc<dyn Store>,
) -> Dispatcher {
    let engine = Engine::in_memory(corpus, llm).unwrap();
    Dispatcher::new(
        Arc::new(EngineHandle::new(engine)),
        settings,
        Arc::new(NoObserver),
    )
    .with_store(store)
}

/// Runs one interaction: its report and what was sent, as JSON.
async fn run(
    dispatcher: &Dispatcher,
    invocation: Invocation,
) -> (InteractionReport, Vec<serde_json::Value>) {
    let responder = RecordingResponder::default();
    let report = dispatcher
        .run_interaction(invocation, &responder)
        .await
        .unwrap();
    (report, responder.sent.into_inner().unwrap())
}

/// No cooldown, and at most `requests` LLM answers per user and day.
fn user_budget(requests: u64) -> BotSettings {
    let budgets = Budgets {
        user_requests_per_day: Some(requests),
        ..Budgets::default()
    };
    BotSettings {
        budgets,
        ..no_cooldown()
    }
}

fn ask(user_id: u64, guild_id: Option<u64>, question: &str) -> Invocation {
    Invocation {
        user_id,
        guild_id,
        channel_id: Some(1),
        request: BotRequest::Ask {
            question: question.to_string(),
            private: false,
        },
        conversation: None,
    }
}

async fn fake_openai() -> FakeLlm {
    FakeLlm::openai_google_l4_answer().await
}

fn no_cooldown() -> BotSettings {
    BotSettings {
        llm_cooldown: Duration::ZERO,
        edit_interval: Duration::ZERO,
        ..BotSettings::default()
    }
}

fn question(at_unix: i64, text: &str, refused: bool) -> QuestionRecord {
    QuestionRecord {
        at_unix,
        user_hash: "u".into(),
        guild_hash: None,
        command: "ask".into(),
        question: text.into(),
        refused,
        mode: "extractive".into(),
        top_coverage: Some(1.0),
        answer_key: None,
        citations: vec!["guide#section".into()],
        fingerprint: "f".into(),
    }
}

fn claim(user: &str, requests_per_day: u64, cooldown: Option<Duration>) -> LlmClaim {
    LlmClaim {
        day: day_of(now_unix()),
        scopes: vec![ScopeLimit {
            scope: BudgetScope::User(user.into()),
            requests_per_day: Some(requests_per_day),
            tokens_per_day: None,
        }],
        cooldown: cooldown.map(|length| Cooldown {
            user_hash: user.into(),
            now_millis: guidebot::store::now_millis(),
            length,
        }),
    }
}

async fn feedback_and_questions_are_stored_with_hashed_ids(db: TestDb) {
    let store = db.open().await;
    let dispatcher = dispatcher(None, no_cooldown(), store.clone());
    let responder = RecordingResponder::default();
    let user_id = 987_654_321_012_345_678;
    let report = dispatcher
        .run_interaction(
            ask(user_id, Some(42), "whats the TC for a google L4 MLE?"),
            &responder,
        )
        .await
        .unwrap();
    let key = report.answer_key.clone().unwrap();
    dispatcher
        .run_interaction(
            Invocation {
                user_id,
                guild_id: Some(42),
                channel_id: Some(1),
                request: BotRequest::Feedback {
                    helpful: false,
                    answer_key: key,
                },
                conversation: None,
            },
            &responder,
        )
        .await
        .unwrap();
    dispatcher
        .run_interaction(ask(5, Some(42), "how do I bake bread"), &responder)
        .await
        .unwrap();
    assert!(dispatcher.flush_storage(FLUSH).await, "the writer drains");
    let report = store.report(7, now_unix()).await.unwrap();
    assert_eq!(report.questions, 2);
    assert!((report.refusal_rate - 0.5).abs() < 1e-9);
    assert_eq!(report.feedback_not_helpful, 1);
    assert_eq!(report.feedback_ratio, Some(0.0));
    let reasons: Vec<(&str, &str)> = report
        .needs_attention
        .iter()
        .map(|item| (item.question.as_str(), item.reason.as_str()))
        .collect();
    assert!(
        reasons.contains(&("how do I bake bread", "refused")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("whats the TC for a google L4 MLE?", "not helpful")),
        "{reasons:?}"
    );
    // No raw id at rest: the dump holds only hashes.
    let dump = store.dump().await.unwrap();
    assert!(dump
        .questions
        .iter()
        .all(|record| !record.user_hash.contains(&user_id.to_string())));
    assert_eq!(
        dump.questions[0].user_hash,
        guidebot::store::hash_id("guidebot", user_id)
    );
    // The ack for the feedback press is ephemeral (flag 64).
    let sent = responder.sent.lock().unwrap();
    assert_eq!(sent[1]["data"]["flags"], 64);
}

async fn budgets_hold_across_a_restart(db: TestDb) {
    let fake = fake_openai().await;
    let settings = BotSettings {
        answer_cache_ttl: Duration::ZERO,
        ..user_budget(1)
    };
    let question = "whats the TC for a google L4 MLE?";
    {
        let dispatcher = dispatcher(Some(fake.settings()), settings.clone(), db.open().await);
        let (report, _) = run(&dispatcher, ask(7, None, question)).await;
        assert_eq!(report.mode.map(|m| m.as_str()), Some("openai"));
        assert!(report.deferred);
        assert!(dispatcher.flush_storage(FLUSH).await);
    }
    // A new process: same database, budget already spent.
    let store = db.open().await;
    let dispatcher = dispatcher(Some(fake.settings()), settings, store.clone());
    let (report, sent) = run(
        &dispatcher,
        ask(7, None, "what does meta pay an E4 data scientist"),
    )
    .await;
    assert_eq!(report.mode.map(|m| m.as_str()), Some("extractive"));
    assert_eq!(
        report.fallback.as_ref().map(|f| f.label()),
        Some("over_budget")
    );
    assert!(!report.deferred, "an extractive answer is sent directly");
    let description = sent[0]["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap();
    assert!(description.contains("budget"), "{description}");
    assert_eq!(fake.requests().await.len(), 1, "no LLM call over budget");
    // The first answer's tokens were added to the user's usage.
    let user = BudgetScope::User(guidebot::store::hash_id("guidebot", 7));
    let usage = store.usage(&user, &day_of(now_unix())).await.unwrap();
    assert_eq!(usage.requests, 1);
    assert_eq!(usage.tokens, 850);
    // Another user still has their budget.
    let (report, _) = run(&dispatcher, ask(8, None, question)).await;
    assert_eq!(report.mode.map(|m| m.as_str()), Some("openai"));
}

async fn concurrent_claims_from_two_replicas_never_pass_the_daily_limit(db: TestDb) {
    let replicas = [db.open().await, db.open().await];
    let limit = 5;
    let mut claims = Vec::new();
    for attempt in 0..40 {
        let store = Arc::clone(&replicas[attempt % 2]);
        claims.push(tokio::spawn(async move {
            store.claim_llm(&claim("racer", limit, None)).await
        }));
    }
    let mut allowed = 0;
    for outcome in futures::future::join_all(claims).await {
        match outcome.unwrap().expect("a claim") {
            ClaimOutcome::Allowed => allowed += 1,
            ClaimOutcome::OverBudget => {}
            ClaimOutcome::Throttled => panic!("no cooldown was asked"),
        }
    }
    assert_eq!(allowed, limit, "exactly the limit, never more");
    let usage = replicas[0]
        .usage(&BudgetScope::User("racer".into()), &day_of(now_unix()))
        .await
        .unwrap();
    assert_eq!(usage.requests, limit);
    // A guild over its limit refuses the whole claim: the user's count is not charged.
    let mut both = claim("member", 10, None);
    both.scopes.push(ScopeLimit {
        scope: BudgetScope::Guild("server".into()),
        requests_per_day: Some(1),
        tokens_per_day: None,
    });
    assert_eq!(
        replicas[0].claim_llm(&both).await.unwrap(),
        ClaimOutcome::Allowed
    );
    assert_eq!(
        replicas[1].claim_llm(&both).await.unwrap(),
        ClaimOutcome::OverBudget
    );
    let member = replicas[1]
        .usage(&BudgetScope::User("member".into()), &day_of(now_unix()))
        .await
        .unwrap();
    assert_eq!(member.requests, 1, "the refused claim charged nothing");
    // Tokens over the limit close the budget for the next claim.
    let mut tokens = claim("writer", 100, None);
    tokens.scopes[0].tokens_per_day = Some(1_000);
    assert_eq!(
        replicas[0].claim_llm(&tokens).await.unwrap(),
        ClaimOutcome::Allowed
    );
    replicas[0]
        .write_batch(&[Write::Tokens {
            scopes: vec![BudgetScope::User("writer".into())],
            day: day_of(now_unix()),
            tokens: 1_200,
        }])
        .await
        .unwrap();
    assert_eq!(
        replicas[1].claim_llm(&tokens).await.unwrap(),
        ClaimOutcome::OverBudget
    );
}

async fn cooldowns_and_replayed_ids_are_shared_between_replicas(db: TestDb) {
    let (first, second) = (db.open().await, db.open().await);
    let cooldown = Some(Duration::from_secs(60));
    assert_eq!(
        first
            .claim_llm(&claim("quick", 100, cooldown))
            .await
            .unwrap(),
        ClaimOutcome::Allowed
    );
    assert_eq!(
        second
            .claim_llm(&claim("quick", 100, cooldown))
            .await
            .unwrap(),
        ClaimOutcome::Throttled,
        "the other replica sees the cooldown"
    );
    let usage = second
        .usage(&BudgetScope::User("quick".into()), &day_of(now_unix()))
        .await
        .unwrap();
    assert_eq!(usage.requests, 1, "a throttled claim is not charged");
    // A cooldown of zero length has passed at once.
    assert_eq!(
        second
            .claim_llm(&claim("quick", 100, Some(Duration::ZERO)))
            .await
            .unwrap(),
        ClaimOutcome::Allowed
    );

    let now = now_unix();
    assert!(first.first_sighting("1234567890", now).await.unwrap());
    assert!(
        !second.first_sighting("1234567890", now).await.unwrap(),
        "a replay on another replica is recognised"
    );
    assert!(second.first_sighting("1234567891", now).await.unwrap());
}

/// Replay checks arriving together are committed together (SQLite's group commit): each id must
/// still pass exactly once, whichever replica sees it first.
async fn a_burst_of_replay_checks_lets_each_id_through_once(db: TestDb) {
    let replicas = [db.open().await, db.open().await];
    let now = now_unix();
    let mut checks = tokio::task::JoinSet::new();
    for round in 0..2 {
        for number in 0..200 {
            let store = Arc::clone(&replicas[(number + round) % 2]);
            checks.spawn(async move {
                let id = format!("burst-{number}");
                let first = store.first_sighting(&id, now).await.unwrap();
                (id, first)
            });
        }
    }
    let mut passed: HashMap<String, usize> = HashMap::new();
    while let Some(check) = checks.join_next().await {
        let (id, first) = check.unwrap();
        *passed.entry(id).or_default() += usize::from(first);
    }
    assert_eq!(passed.len(), 200);
    assert!(
        passed.values().all(|&count| count == 1),
        "every id passes once: {passed:?}"
    );
}

/// An interaction id made at Unix second `second` (plus `millis`), low bits `low`, as text.
fn id_at(second: i64, millis: i64, low: u64) -> String {
    snowflake_at(second * 1000 + millis, low).to_string()
}

/// Replay checks through [`Storage`] (what the endpoint calls): every id passes once and every
/// repeat is refused, whether it is fresh, a minute old, in the future, or not a snowflake at all;
/// SQLite answers fresh ids from memory, PostgreSQL always asks the database.
async fn replay_checks_through_storage_refuse_every_replay(db: TestDb) {
    let storage = Storage::start(db.open().await, StorageOptions::default(), true);
    storage.replay_memory_loaded().await;
    let now = now_unix();
    let ids = [
        id_at(now, 1, 1),
        id_at(now - 5, 2, 2),
        id_at(now - 200, 3, 3),
        id_at(now + 3_600, 4, 4),
        "not-a-snowflake".to_string(),
        "0123".to_string(),
    ];
    for id in &ids {
        assert!(
            storage.first_sighting(id, now).await.unwrap(),
            "{id} is new"
        );
    }
    for id in &ids {
        assert!(
            !storage.first_sighting(id, now).await.unwrap(),
            "{id} again"
        );
    }
    let figures = storage.figures();
    let from_memory = match db.open().await.backend() {
        // The fresh and the 5-s-old id twice each, and the repeat of the future id (remembered
        // when the store checked it).
        Backend::Sqlite => 5,
        Backend::Postgres => 0,
    };
    assert_eq!(figures.replay_from_memory, from_memory, "{figures:?}");
    assert_eq!(figures.replay_from_store, 12 - from_memory, "{figures:?}");
    // Everything accepted is in the database once the writer has drained.
    assert!(storage.flush(FLUSH).await);
    let store = db.open().await;
    for id in &ids {
        assert!(!store.first_sighting(id, now).await.unwrap(), "{id} stored");
    }
}

async fn recorded_interaction_ids_are_read_back_by_range(db: TestDb) {
    let store = db.open().await;
    let now = now_unix();
    let inside = [
        snowflake_at(now * 1000, 1),
        snowflake_at(now * 1000 + 999, 0x3F_FFFF),
        snowflake_at((now + 10) * 1000, 7),
    ];
    let outside = [
        snowflake_at((now - 1) * 1000 + 999, 0x3F_FFFF),
        snowflake_at((now + 11) * 1000, 0),
    ];
    store
        .write_batch(&[Write::SeenInteractions {
            ids: inside.iter().chain(&outside).copied().collect(),
            at_unix: now,
        }])
        .await
        .unwrap();
    // Text that is not a canonical number is never read back, even inside the range's text.
    let (first, last) = (
        snowflake_at(now * 1000, 0),
        snowflake_at((now + 11) * 1000, 0) - 1,
    );
    let first_text = first.to_string();
    let odd = format!("{}x", &first_text[..first_text.len() - 1]);
    assert!(store.first_sighting(&odd, now).await.unwrap());
    let mut read = store.interaction_ids_between(first, last).await.unwrap();
    read.sort_unstable();
    assert_eq!(read, inside.to_vec());
    // A range across a change of length reads both lengths.
    for small in ["9", "10", "99", "100"] {
        assert!(store.first_sighting(small, now).await.unwrap());
    }
    let mut small = store.interaction_ids_between(9, 99).await.unwrap();
    small.sort_unstable();
    assert_eq!(small, vec![9, 10, 99]);
}

/// SQLite: a fresh id is refused from memory the second time (no store call), counted, and in
/// the file once the writer has committed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_replays_of_fresh_ids_are_refused_from_memory_and_counted() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let storage = Storage::start(store.clone(), StorageOptions::default(), true);
    storage.replay_memory_loaded().await;
    let now = now_unix();
    let id = id_at(now, 500, 42);
    assert!(storage.first_sighting(&id, now).await.unwrap());
    assert!(!storage.first_sighting(&id, now).await.unwrap());
    let figures = storage.figures();
    assert_eq!(
        (figures.replay_from_memory, figures.replay_from_store),
        (2, 0),
        "{figures:?}"
    );
    assert_eq!(figures.replay_ids_in_memory, 1);
    assert!(storage.flush(FLUSH).await);
    assert!(
        !store.first_sighting(&id, now).await.unwrap(),
        "the writer committed the id"
    );
    assert_eq!(
        storage.figures().written,
        0,
        "replay ids are not counted as analytics writes"
    );
}

/// SQLite: ids seen before a restart are refused after it (the new process loads the recent
/// ids from the file, and the store still answers for older ones), and ids of the future seen
/// before it are refused once the clock reaches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_replay_after_a_restart_is_refused() {
    let db = TestDb::sqlite();
    let now = now_unix();
    let ids = [
        id_at(now, 1, 1),         // fresh: memory
        id_at(now - 2, 2, 2),     // 2 s old: memory
        id_at(now - 200, 3, 3),   // older than memory's reach: the store
        id_at(now + 3_600, 4, 4), // an hour ahead: the store, remembered
    ];
    let before = Storage::start(db.open().await, StorageOptions::default(), true);
    before.replay_memory_loaded().await;
    for id in &ids {
        assert!(before.first_sighting(id, now).await.unwrap(), "{id}");
    }
    assert_eq!(before.figures().replay_from_memory, 2);
    // A clean shutdown: the writer drains.
    assert!(before.flush(FLUSH).await);
    drop(before);

    let after = Storage::start(db.open().await, StorageOptions::default(), true);
    after.replay_memory_loaded().await;
    for id in &ids {
        assert!(!after.first_sighting(id, now).await.unwrap(), "{id}");
    }
    let figures = after.figures();
    assert_eq!(
        (figures.replay_from_memory, figures.replay_from_store),
        (3, 1),
        "{figures:?}: memory loaded all but the oldest"
    );
    // An hour later the future id is in memory's range, and memory still refuses it.
    let later = now + 3_600;
    assert!(!after.first_sighting(&ids[3], later).await.unwrap());
    assert_eq!(after.figures().replay_from_memory, 4);
}

/// SQLite: concurrent checks of the same ids, starting while the recent ids are still being
/// loaded (checks then ask the store and are remembered too) and going on once memory answers:
/// every id passes exactly once, fresh or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_burst_of_concurrent_checks_lets_each_id_through_once() {
    let db = TestDb::sqlite();
    let storage = Storage::start(db.open().await, StorageOptions::default(), true);
    let now = now_unix();
    let mut ids: Vec<String> = (0..300).map(|n| id_at(now, n % 1000, n as u64)).collect();
    ids.extend((0..50).map(|n| id_at(now - 120, n, n as u64)));
    ids.extend((0..50).map(|n| id_at(now + 600, n, n as u64)));
    let mut checks = tokio::task::JoinSet::new();
    let spawn_round = |checks: &mut tokio::task::JoinSet<(String, bool)>| {
        for id in &ids {
            let (storage, id) = (Arc::clone(&storage), id.clone());
            checks.spawn(async move {
                let first = storage.first_sighting(&id, now).await.unwrap();
                (id, first)
            });
        }
    };
    spawn_round(&mut checks);
    spawn_round(&mut checks);
    storage.replay_memory_loaded().await;
    spawn_round(&mut checks);
    let mut passed: HashMap<String, usize> = HashMap::new();
    while let Some(check) = checks.join_next().await {
        let (id, first) = check.unwrap();
        *passed.entry(id).or_default() += usize::from(first);
    }
    assert_eq!(passed.len(), ids.len());
    assert!(
        passed.values().all(|&count| count == 1),
        "every id passes once: {:?}",
        passed
            .iter()
            .filter(|(_, &count)| count != 1)
            .collect::<Vec<_>>()
    );
    // And once memory answers, a last round refuses them all.
    storage.replay_memory_loaded().await;
    for id in &ids {
        assert!(!storage.first_sighting(id, now).await.unwrap(), "{id}");
    }
}

/// SQLite: ids at the edges of memory's reach (a minute behind and ahead of the clock, and how
/// far ahead memory remembers ids the store checked) are each accepted once and refused after;
/// an id leaves memory only once it is committed, and is then refused by the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ids_at_the_edges_of_memory_are_checked_exactly() {
    use guidebot::store::{FUTURE_REMEMBERED, REPLAY_MEMORY_AHEAD, REPLAY_MEMORY_BEHIND};
    let db = TestDb::sqlite();
    let storage = Storage::start(db.open().await, StorageOptions::default(), true);
    storage.replay_memory_loaded().await;
    let now = now_unix();
    let (behind, ahead) = (
        REPLAY_MEMORY_BEHIND.as_secs() as i64,
        REPLAY_MEMORY_AHEAD.as_secs() as i64,
    );
    let remembered = ahead + FUTURE_REMEMBERED.as_secs() as i64;
    // (the id's second, checks answered by memory, by the store): an id the store checked is
    // remembered, so its repeat is refused from memory, except beyond how far memory remembers.
    let edges = [
        (now - behind, 2, 0),
        (now - behind - 1, 0, 2),
        (now + ahead, 2, 0),
        (now + ahead + 1, 1, 1),
        (now + remembered, 1, 1),
        (now + remembered + 1, 0, 2),
    ];
    for (n, (second, by_memory, by_store)) in edges.into_iter().enumerate() {
        for millis in [0, 999] {
            let id = id_at(second, millis, n as u64);
            let before = storage.figures();
            assert!(storage.first_sighting(&id, now).await.unwrap(), "{id} new");
            assert!(
                !storage.first_sighting(&id, now).await.unwrap(),
                "{id} again"
            );
            let after = storage.figures();
            let counted = (
                after.replay_from_memory - before.replay_from_memory,
                after.replay_from_store - before.replay_from_store,
            );
            let offset = second - now;
            assert_eq!(
                counted,
                (by_memory, by_store),
                "ms {millis} of second now{offset:+}"
            );
        }
    }
    // A second later, the id a minute and a second ahead is in memory's range: memory remembered
    // it when the store checked it, and refuses it.
    let ahead_id = id_at(now + ahead + 1, 0, 3);
    let before = storage.figures().replay_from_memory;
    assert!(!storage.first_sighting(&ahead_id, now + 1).await.unwrap());
    assert_eq!(storage.figures().replay_from_memory, before + 1);
    // The id remembered at the far edge reaches memory's range later and is refused there too.
    let far_id = id_at(now + remembered, 0, 4);
    let far_later = now + FUTURE_REMEMBERED.as_secs() as i64;
    let before = storage.figures().replay_from_memory;
    assert!(!storage.first_sighting(&far_id, far_later).await.unwrap());
    assert_eq!(storage.figures().replay_from_memory, before + 1);
}

/// SQLite: an id stays in memory past its minute while the writer cannot commit it (another
/// connection holds the write lock, so the store could not answer either), and once it is
/// committed it leaves memory and the store refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_id_leaves_memory_only_once_committed() {
    let (_dir, store, locker) = locked_sqlite();
    let storage = Storage::start(store, StorageOptions::default(), true);
    storage.replay_memory_loaded().await;
    let now = now_unix();
    let fresh = id_at(now, 0, 77);
    assert!(storage.first_sighting(&fresh, now).await.unwrap());
    let deadline = std::time::Instant::now() + FLUSH;
    while storage.figures().failed_batches == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never tried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let past_its_minute = now + guidebot::store::REPLAY_MEMORY_BEHIND.as_secs() as i64 + 1;
    assert!(
        !storage
            .first_sighting(&fresh, past_its_minute)
            .await
            .unwrap(),
        "not committed: memory still refuses it"
    );
    assert_eq!(storage.figures().replay_from_memory, 2);

    drop(locker); // the lock is released (its transaction rolls back)
    assert!(storage.flush(FLUSH).await);
    let later = past_its_minute + 1;
    assert!(!storage.first_sighting(&fresh, later).await.unwrap());
    let figures = storage.figures();
    assert_eq!(
        (figures.replay_from_memory, figures.replay_from_store),
        (2, 1),
        "committed and past the floor: the store refuses it"
    );
    assert_eq!(figures.replay_ids_in_memory, 0);
}

async fn cached_answers_skip_the_llm_until_the_corpus_changes(db: TestDb) {
    let fake = fake_openai().await;
    let question = "whats the TC for a google L4 MLE?";
    let first = dispatcher(Some(fake.settings()), no_cooldown(), db.open().await);
    let (report, _) = run(&first, ask(1, None, question)).await;
    assert!(!report.cached);
    let (report, _) = run(&first, ask(2, None, "Whats the TC for a Google L4 MLE??")).await;
    assert!(
        report.cached,
        "same normalized question, same index: served from the cache"
    );
    assert_eq!(report.mode.map(|m| m.as_str()), Some("openai"));
    assert_eq!(fake.requests().await.len(), 1);
    assert!(first.flush_storage(FLUSH).await);

    // Another replica (its own memory cache is empty) finds the answer in the shared store.
    let other = dispatcher(Some(fake.settings()), no_cooldown(), db.open().await);
    let (report, _) = run(&other, ask(4, None, question)).await;
    assert!(report.cached, "the cache is shared between replicas");
    assert_eq!(fake.requests().await.len(), 1);

    // Change the corpus: new fingerprint, the cached answer no longer applies.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(bundled_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let guide = dir.path().join("mid-level-ds-mle-guide-2026.md");
    let text = std::fs::read_to_string(&guide).unwrap();
    std::fs::write(&guide, format!("{text}\nAn added paragraph.\n")).unwrap();
    let corpus = corpus_at(dir.path());
    let second = dispatcher_on(
        corpus,
        Some(fake.settings()),
        no_cooldown(),
        db.open().await,
    );
    let (report, _) = run(&second, ask(3, None, question)).await;
    assert!(!report.cached);
    assert_eq!(fake.requests().await.len(), 2);

    // The TTL holds in the store itself.
    let store = db.open().await;
    let key = report.answer_key.unwrap();
    assert!(second.flush_storage(FLUSH).await);
    assert!(store
        .cached_answer(&key, Duration::from_secs(60), now_unix())
        .await
        .unwrap()
        .is_some());
    assert!(store
        .cached_answer(&key, Duration::from_secs(60), now_unix() + 120)
        .await
        .unwrap()
        .is_none());
}

async fn retention_deletes_old_rows(db: TestDb) {
    let store = db.open().await;
    let now = now_unix();
    for (age_days, text) in [(40, "old question"), (1, "new question")] {
        store
            .record_question(&question(now - age_days * 86_400, text, false))
            .await
            .unwrap();
    }
    assert!(store
        .first_sighting("old-interaction", now - 2 * 86_400)
        .await
        .unwrap());
    assert_eq!(store.purge_older_than(30, now).await.unwrap(), 2);
    let report = store.report(365, now).await.unwrap();
    assert_eq!(report.questions, 1);
    assert_eq!(report.most_asked[0].0, "new question");
    assert!(
        store.first_sighting("old-interaction", now).await.unwrap(),
        "replay ids are forgotten after a day"
    );
}

async fn migrations_run_once_even_when_two_replicas_start_together(db: TestDb) {
    let (first, second) = (db.open_unmigrated(), db.open_unmigrated());
    let (a, b) = tokio::join!(first.migrate(), second.migrate());
    let applied = a.expect("migrate") + b.expect("migrate");
    let expected = match first.backend() {
        Backend::Postgres => guidebot::store::POSTGRES_MIGRATIONS.len(),
        // SQLite migrates when a file is opened: the first open did it.
        Backend::Sqlite => 0,
    };
    assert_eq!(applied, expected);
    assert_eq!(first.migrate().await.unwrap(), 0, "nothing left to apply");
    first
        .record_question(&question(now_unix(), "after migrations", false))
        .await
        .unwrap();
    assert_eq!(
        second.report(1, now_unix()).await.unwrap().questions,
        1,
        "both handles use one schema"
    );
}

async fn the_writer_commits_in_batches_and_drains_on_flush(db: TestDb) {
    let store = db.open().await;
    let storage = Storage::start(store.clone(), StorageOptions::default(), true);
    let now = now_unix();
    for n in 0..1_200 {
        storage.enqueue(Write::Question(question(
            now,
            &format!("question {n}"),
            n % 4 == 0,
        )));
    }
    assert!(storage.flush(FLUSH).await);
    let report = store.report(1, now).await.unwrap();
    assert_eq!(report.questions, 1_200);
    assert!((report.refusal_rate - 0.25).abs() < 1e-9);
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(storage.counters().written.load(Relaxed), 1_200);
    assert_eq!(storage.counters().dropped.load(Relaxed), 0);

    // A full queue drops (and counts) rather than waiting.
    let tiny = Storage::start(
        store.clone(),
        StorageOptions {
            queue_capacity: 1,
            batch_interval: Duration::from_millis(200),
            ..StorageOptions::default()
        },
        true,
    );
    for n in 0..50 {
        tiny.enqueue(Write::Question(question(now, &format!("burst {n}"), false)));
    }
    assert!(tiny.flush(FLUSH).await);
    let (written, dropped) = (
        tiny.counters().written.load(Relaxed),
        tiny.counters().dropped.load(Relaxed),
    );
    assert_eq!(written + dropped, 50, "every write is stored or counted");
    assert!(dropped > 0, "a one-slot queue overflows");
}

async fn an_sqlite_file_moves_into_the_other_database(db: TestDb) {
    let source = SqliteStore::in_memory().unwrap();
    let now = now_unix();
    source
        .record_question(&question(now, "what do juniors earn", true))
        .await
        .unwrap();
    source
        .record_feedback(&guidebot::store::FeedbackRecord {
            at_unix: now,
            user_hash: "u".into(),
            answer_key: "k".into(),
            helpful: true,
        })
        .await
        .unwrap();
    assert_eq!(
        source.claim_llm(&claim("mover", 3, None)).await.unwrap(),
        ClaimOutcome::Allowed
    );
    source.write_batch(&[hand_off(now, "g")]).await.unwrap();
    let dump = source.dump().await.unwrap();
    assert_eq!(dump.escalations.len(), 1);
    let target = db.open().await;
    target.import(&dump).await.unwrap();
    let copied = target.dump().await.unwrap();
    assert_eq!(copied.questions, dump.questions);
    assert_eq!(copied.feedback, dump.feedback);
    assert_eq!(copied.usage, dump.usage);
    assert_eq!(copied.escalations, dump.escalations);
    let report = target.report(1, now).await.unwrap();
    assert_eq!(report.questions, 1);
    assert_eq!(report.feedback_helpful, 1);
}

async fn report_exports_questions_to_label_in_the_eval_format(db: TestDb) {
    let store = db.open().await;
    let now = now_unix();
    store
        .record_question(&question(now, "is a \"PhD\" required?", true))
        .await
        .unwrap();
    let report = store.report(7, now).await.unwrap();
    let exported = guidebot::cli::export_eval_toml(&report);
    let set = guidebot::eval::EvalSet::parse("export", &exported).unwrap();
    assert_eq!(set.questions.len(), 1);
    assert_eq!(set.questions[0].text, "is a \"PhD\" required?");
    assert!(set.questions[0].tags.contains(&"refused".to_string()));
}

/// SQLite only: another connection holds the write lock (as a stuck writer would). The answer
/// still arrives, extractive, and the note says written answers are paused: budgets that cannot
/// be checked are not spent blindly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_never_stops_an_answer_and_refuses_unchecked_llm_answers() {
    let (_dir, store, _locker) = locked_sqlite();
    let fake = fake_openai().await;
    let dispatcher = dispatcher(Some(fake.settings()), user_budget(5), store);
    let (report, sent) = run(
        &dispatcher,
        ask(1, Some(2), "whats the TC for a google L4 MLE?"),
    )
    .await;
    assert_eq!(report.outcome, Outcome::Fallback);
    assert_eq!(
        report.fallback.as_ref().map(|f| f.label()),
        Some("store_unavailable")
    );
    let text = sent[0].to_string();
    assert!(text.contains("database is unreachable"), "{text}");
    assert!(fake.requests().await.is_empty(), "no unbudgeted LLM call");
}

/// A store on a new SQLite file that another connection (returned with it) holds the write
/// lock of, as a stuck writer would.
fn locked_sqlite() -> (tempfile::TempDir, Arc<dyn Store>, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("guidebot.sqlite");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO usage (scope, day, requests, tokens) VALUES ('x', 'y', 1, 1);")
        .unwrap();
    (dir, store, locker)
}

/// PostgreSQL unreachable (nothing listens on the port): extractive answers continue, LLM answers
/// are refused with the note, and the writes wait in the queue instead of failing the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_keeps_extractive_answers_and_fails_closed() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://guidebot@127.0.0.1:{closed_port}/guidebot");
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&Secret::new(url), None).unwrap());
    assert!(store.migrate().await.is_err());
    let fake = fake_openai().await;
    let dispatcher = dispatcher(Some(fake.settings()), user_budget(5), store);
    let (report, _) = run(
        &dispatcher,
        ask(1, None, "whats the TC for a google L4 MLE?"),
    )
    .await;
    assert_eq!(
        report.fallback.as_ref().map(|f| f.label()),
        Some("store_unavailable")
    );
    assert!(!report.deferred, "answered at once, extractively");
    assert!(fake.requests().await.is_empty());
    assert!(
        !dispatcher.flush_storage(Duration::from_millis(300)).await,
        "the question waits in the queue while the database is down"
    );
}

/// A TCP proxy in front of the test server that can be cut (a lost database, as a network
/// partition would look) and restored.
struct Proxy {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (generation, watcher) = tokio::sync::watch::channel(0u64);
        let accepting = Arc::clone(&up);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: connection refused in effect
                }
                let mut cut = watcher.clone();
                cut.borrow_and_update(); // only later cuts end this connection
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation.send_modify(|generation| *generation += 1);
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// PostgreSQL lost while serving, then back: writes wait in the bounded queue (failed batches
/// are counted and retried with back-off) and are all committed after the reconnect; the pool
/// reconnects by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_while_postgres_is_lost_are_committed_after_it_returns() {
    let Some(TestDb::Postgres { url }) =
        TestDb::postgres("writes_queued_while_postgres_is_lost_are_committed_after_it_returns")
            .await
    else {
        return;
    };
    let mut parsed = reqwest::Url::parse(&url).unwrap();
    let upstream = std::net::SocketAddr::new(
        parsed.host_str().unwrap().parse().unwrap(),
        parsed.port().unwrap(),
    );
    let proxy = Proxy::start(upstream).await;
    parsed.set_port(Some(proxy.port)).unwrap();
    let through_proxy: Arc<dyn Store> =
        Arc::new(PostgresStore::connect(&Secret::new(parsed.to_string()), None).unwrap());
    through_proxy.migrate().await.unwrap();
    let direct = TestDb::Postgres { url }.open().await;
    let storage = Storage::start(
        through_proxy.clone(),
        StorageOptions {
            max_backoff: Duration::from_millis(200),
            ..StorageOptions::default()
        },
        true,
    );
    let now = now_unix();
    for n in 0..10 {
        storage.enqueue(Write::Question(question(
            now,
            &format!("before {n}"),
            false,
        )));
    }
    assert!(storage.flush(FLUSH).await);

    proxy.cut();
    for n in 0..10 {
        storage.enqueue(Write::Question(question(
            now,
            &format!("during {n}"),
            false,
        )));
    }
    assert!(
        !storage.flush(Duration::from_millis(500)).await,
        "nothing can be committed while the database is lost"
    );
    assert!(through_proxy.ping().await.is_err());
    use std::sync::atomic::Ordering::Relaxed;
    assert!(storage.counters().failed_batches.load(Relaxed) > 0);
    assert_eq!(direct.report(1, now).await.unwrap().questions, 10);
    // A shared database every replica uses is lost: each replica stays in rotation (extractive
    // answers need no store) and says it is degraded, instead of all of them going unready.
    for _ in 0..3 {
        assert!(storage.store().ping().await.is_err());
    }
    assert!(
        storage.readiness().is_err(),
        "callers skip the failing store"
    );
    match storage.check_readiness().await {
        StoreReadiness::Degraded(reason) => {
            assert!(reason.contains("postgres store is failing"), "{reason}")
        }
        other => panic!("a lost shared database degrades, it does not unready: {other:?}"),
    }

    proxy.restore();
    assert!(storage.flush(FLUSH).await, "flushed after the reconnect");
    assert_eq!(storage.check_readiness().await, StoreReadiness::Ready);
    assert_eq!(direct.report(1, now).await.unwrap().questions, 20);
    assert_eq!(storage.counters().dropped.load(Relaxed), 0);
    through_proxy.ping().await.expect("the pool reconnected");
}

/// A store on a new SQLite file (its path returned with it) holding one question asked now.
async fn sqlite_file_with(question_text: &str) -> (tempfile::TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guidebot.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    store
        .record_question(&question(now_unix(), question_text, false))
        .await
        .unwrap();
    (dir, path, store)
}

/// Issue 14: an SQLite file deleted while serving used to keep receiving writes in its unlinked
/// inode (everything gone at the next restart). The store now notices, opens the path again
/// (creating and migrating a new file), counts it, and later writes land in the file on disk.
#[tokio::test]
async fn an_sqlite_file_deleted_while_serving_is_opened_again() {
    let (_dir, path, store) = sqlite_file_with("before the delete").await;
    let now = now_unix();
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::remove_file(&file).unwrap();
        }
    }
    assert!(!path.exists());

    store
        .record_question(&question(now, "after the delete", false))
        .await
        .unwrap();

    assert_eq!(store.reopened(), 1, "the removed file was noticed once");
    assert!(path.exists(), "a new file is in place");
    // A second process (or the next start) reads what was written after the delete.
    let reader = SqliteStore::open(&path).unwrap();
    let report = reader.report(1, now_unix()).await.unwrap();
    assert_eq!(report.questions, 1, "{report:?}");
    assert_eq!(report.most_asked[0].0, "after the delete");
    // Nothing changed since: no more reopening.
    store
        .record_question(&question(now, "later", false))
        .await
        .unwrap();
    assert_eq!(store.reopened(), 1);
}

/// Issue 14: an SQLite file replaced while serving (another file renamed over it, as a restore
/// does, its side files removed) is noticed like a deleted one: the store opens what is at the
/// path now (here an empty database, migrated on opening) and later writes land there, not in
/// the replaced inode.
#[tokio::test]
async fn an_sqlite_file_replaced_while_serving_is_opened_again() {
    let (dir, path, store) = sqlite_file_with("before the replace").await;
    let replacement = dir.path().join("restored.sqlite");
    std::fs::write(&replacement, b"").unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::remove_file(&side).unwrap();
        }
    }

    store
        .record_question(&question(now_unix(), "after the replace", false))
        .await
        .unwrap();
    assert_eq!(store.reopened(), 1, "the replaced file was noticed once");
    let reader = SqliteStore::open(&path).unwrap();
    let report = reader.report(1, now_unix()).await.unwrap();
    assert_eq!(report.questions, 1, "{report:?}");
    assert_eq!(report.most_asked[0].0, "after the replace");
}

/// Issue 14: an SQLite file whose bytes are overwritten while serving (a disk fault, a stray
/// `dd`) fails every later call with an error — never a panic, never a silent success — so
/// `/readyz` reports the store down and budget checks fail closed.
#[tokio::test]
async fn an_sqlite_file_corrupted_while_serving_fails_calls_cleanly() {
    use std::io::{Seek, SeekFrom, Write};
    let (_dir, path, store) = sqlite_file_with("before the damage").await;
    let now = now_unix();
    store.ping().await.expect("healthy before");
    // Overwrite the header and the first pages in place (same inode: not a replaced file).
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&[0xA5; 8192]).unwrap();
    file.sync_all().unwrap();
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::write(&side, [0x5A; 4096]).unwrap();
        }
    }

    assert!(store.ping().await.is_err(), "readiness sees the damage");
    assert!(store
        .record_question(&question(now, "after the damage", false))
        .await
        .is_err());
    let report = store.report(1, now).await;
    assert!(report.is_err(), "{report:?}");
    assert_eq!(
        store.reopened(),
        0,
        "the same file, damaged: nothing to reopen"
    );
}

/// Issue 17: `/guidebot stats` reads the shared database, so a server's admins see the questions
/// every replica answered, and only their own server's.
async fn server_stats_come_from_the_shared_database(db: TestDb) {
    let (first_store, second_store) = (db.open().await, db.open().await);
    let replica = |store: Arc<dyn Store>| dispatcher(None, no_cooldown(), store);
    let (first, second) = (replica(first_store), replica(second_store));
    let responder = RecordingResponder::default();
    for (dispatcher, guild, question) in [
        (&first, 42, "whats the TC for a google L4 MLE?"),
        (&second, 42, "how do I bake sourdough bread"),
        (&second, 42, "how do I bake sourdough bread?"),
        (&first, 43, "how do I grow tomatoes"),
    ] {
        dispatcher
            .run_interaction(ask(7, Some(guild), question), &responder)
            .await
            .unwrap();
    }
    assert!(first.flush_storage(Duration::from_secs(10)).await);
    assert!(second.flush_storage(Duration::from_secs(10)).await);

    let (_, sent) = run(&first, stats_in(42)).await;
    let shown = sent[0].to_string();
    assert!(
        shown.contains("Questions: 3"),
        "both replicas, this server only: {shown}"
    );
    assert!(shown.contains("Refused: 2 (67%)"), "{shown}");
    assert!(
        shown.contains("2× how do I bake sourdough bread"),
        "{shown}"
    );
    assert!(
        !shown.contains("tomatoes"),
        "another server's questions: {shown}"
    );
}

/// `/guidebot stats` in server `guild`, by a member with Manage Server.
fn stats_in(guild: u64) -> Invocation {
    Invocation {
        user_id: 1,
        guild_id: Some(guild),
        channel_id: Some(1),
        request: BotRequest::Admin {
            action: guidebot::bot::request::AdminAction::Stats,
            manage_server: true,
        },
        conversation: None,
    }
}

/// A hand-off row at `at_unix` in the server hashed as `guild_hash`.
fn hand_off(at_unix: i64, guild_hash: &str) -> Write {
    Write::Escalation(EscalationRecord {
        at_unix,
        user_hash: "u".into(),
        guild_hash: guild_hash.into(),
        answer_key: "k".into(),
    })
}

/// Issue 16: a "Still need help?" press is a row in the store (salted hashes only, like the other
/// analytics), so `/guidebot stats` counts a server's hand-offs whichever replica took them — and
/// a replica that took none itself shows them, without "(this process)".
async fn hand_offs_are_recorded_and_counted_per_server(db: TestDb) {
    const ROLE: u64 = 555_000_000_000_000_001;
    let settings = BotSettings {
        helper_role_id: Some(ROLE),
        ..no_cooldown()
    };
    let first = dispatcher(None, settings.clone(), db.open().await);
    let second = dispatcher(None, settings, db.open().await);
    let (answered, _) = run(&first, ask(7, Some(42), "how do I bake sourdough bread")).await;
    let key = answered.answer_key.expect("an answer key");
    for (replica, user, guild) in [(&first, 7, 42), (&second, 8, 42), (&first, 9, 43)] {
        let press = Invocation {
            user_id: user,
            guild_id: Some(guild),
            channel_id: Some(1),
            request: BotRequest::Escalate {
                answer_key: key.clone(),
            },
            conversation: None,
        };
        let (report, sent) = run(replica, press).await;
        assert_eq!(report.outcome, Outcome::Escalated);
        assert!(
            sent[0].to_string().contains(&format!("<@&{ROLE}>")),
            "the helper role is pinged: {}",
            sent[0]
        );
    }
    assert!(first.flush_storage(FLUSH).await);
    assert!(second.flush_storage(FLUSH).await);

    let store = db.open().await;
    let third = dispatcher(None, no_cooldown(), store.clone());
    let (_, sent) = run(&third, stats_in(42)).await;
    let shown = sent[0].to_string();
    assert!(
        shown.contains("Hand-offs to helpers: 2"),
        "both replicas' hand-offs in this server: {shown}"
    );
    assert!(!shown.contains("this process"), "{shown}");
    let (_, sent) = run(&third, stats_in(43)).await;
    let shown = sent[0].to_string();
    assert!(shown.contains("Hand-offs to helpers: 1"), "{shown}");

    let now = now_unix();
    let stats = store
        .guild_stats(&hash_id("guidebot", 42), 30, now)
        .await
        .unwrap();
    assert_eq!(stats.escalations, 2);
    let dump = store.dump().await.unwrap();
    let mut rows: Vec<(String, String, String)> = dump
        .escalations
        .iter()
        .map(|row| {
            let EscalationRecord {
                user_hash,
                guild_hash,
                answer_key,
                ..
            } = row.clone();
            (user_hash, guild_hash, answer_key)
        })
        .collect();
    let hashed = |user: u64, guild: u64| {
        (
            hash_id("guidebot", user),
            hash_id("guidebot", guild),
            key.clone(),
        )
    };
    // Two writers committed them: compare in one order.
    rows.sort();
    let mut expected = [hashed(7, 42), hashed(8, 42), hashed(9, 43)];
    expected.sort();
    assert_eq!(rows, expected);
}

/// Hand-offs are deleted with the other analytics, by the same retention setting.
async fn retention_purges_hand_offs(db: TestDb) {
    let store = db.open().await;
    let now = now_unix();
    store
        .write_batch(&[
            hand_off(now - 40 * 86_400, "g"),
            hand_off(now - 86_400, "g"),
        ])
        .await
        .unwrap();
    let count = |since_days: u32| {
        let store = store.clone();
        async move {
            let stats = store.guild_stats("g", since_days, now).await.unwrap();
            stats.escalations
        }
    };
    assert_eq!(count(365).await, 2);
    assert_eq!(count(30).await, 1, "stats count their period only");
    assert_eq!(store.purge_older_than(30, now).await.unwrap(), 1);
    assert_eq!(count(365).await, 1, "the old hand-off is gone");
    assert_eq!(store.purge_older_than(30, now).await.unwrap(), 0);
}

/// Conversation history in the store, as one replica (`StoreHistory` over its own handle).
async fn history_on(db: &TestDb, limits: HistoryLimits) -> StoreHistory {
    let storage = Storage::start(db.open().await, StorageOptions::default(), true);
    StoreHistory::new(storage, limits, "salt")
}

fn turn(question: &str) -> PriorTurn {
    PriorTurn {
        question: question.to_string(),
        standalone: format!("{question} standalone"),
        answer: format!("answer to {question}"),
    }
}

fn questions(turns: &[PriorTurn]) -> Vec<&str> {
    turns.iter().map(|turn| turn.question.as_str()).collect()
}

/// Issue 16: the last N turns within T, whichever replica wrote them; older turns are dropped
/// when a new one is written; a thread the bot answered in stays one for a day.
async fn conversation_turns_are_kept_within_the_last_turns_and_the_age_limit(db: TestDb) {
    let limits = HistoryLimits {
        turns: 2,
        max_age: Duration::from_secs(600),
    };
    let (writer, reader) = (history_on(&db, limits).await, history_on(&db, limits).await);
    let (key, base) = (ConversationKey::Thread(7), 1_000_000);
    for (at, question) in [(0, "one"), (100, "two"), (200, "three")] {
        writer.record(key, turn(question), base + at).await.unwrap();
    }
    let recent = reader.recent(key, base + 300).await.unwrap();
    assert_eq!(questions(&recent), ["two", "three"]);
    assert_eq!(recent[1], turn("three"), "every field comes back");
    // A replica allowing more turns still finds two: the third was deleted when written.
    let generous = history_on(
        &db,
        HistoryLimits {
            turns: 10,
            max_age: Duration::from_secs(600),
        },
    )
    .await;
    assert_eq!(
        questions(&generous.recent(key, base + 300).await.unwrap()),
        ["two", "three"]
    );
    // Past the age limit "two" no longer counts; then neither does "three".
    assert_eq!(
        questions(&reader.recent(key, base + 750).await.unwrap()),
        ["three"]
    );
    assert!(reader.recent(key, base + 10_000).await.unwrap().is_empty());
    // Another conversation (a chain with the same id, another thread) has nothing.
    assert!(reader
        .recent(ConversationKey::Chain(7), base + 300)
        .await
        .unwrap()
        .is_empty());
    assert!(reader
        .recent(ConversationKey::Thread(8), base + 300)
        .await
        .unwrap()
        .is_empty());
    // The thread is the bot's for a day after its last turn, on every replica.
    let day = THREAD_MEMORY.as_secs() as i64;
    assert!(reader.is_bot_thread(7, base + 10_000).await.unwrap());
    assert!(reader.is_bot_thread(7, base + 200 + day).await.unwrap());
    assert!(!reader.is_bot_thread(7, base + 201 + day).await.unwrap());
    assert!(!reader.is_bot_thread(8, base + 300).await.unwrap());
    // A reply chain is never a bot thread, whatever its id.
    writer
        .record(ConversationKey::Chain(9), turn("chain"), base)
        .await
        .unwrap();
    assert!(!reader.is_bot_thread(9, base + 1).await.unwrap());
}

/// A reply to a posted answer finds its conversation through the link, from any replica; links
/// expire with the thread memory, a later link replaces an earlier one, and ids above 2^63
/// (snowflakes are unsigned) come back whole.
async fn linked_messages_lead_back_to_their_conversation(db: TestDb) {
    let limits = HistoryLimits::default();
    let (writer, reader) = (history_on(&db, limits).await, history_on(&db, limits).await);
    let base = 2_000_000;
    let chain = ConversationKey::Chain(u64::MAX - 5);
    writer.link(55, chain, base).await.unwrap();
    writer
        .link(u64::MAX, ConversationKey::Thread(3), base)
        .await
        .unwrap();
    assert_eq!(
        reader.conversation_of(55, base + 10).await.unwrap(),
        Some(chain)
    );
    assert_eq!(
        reader.conversation_of(u64::MAX, base + 10).await.unwrap(),
        Some(ConversationKey::Thread(3))
    );
    assert_eq!(reader.conversation_of(56, base + 10).await.unwrap(), None);
    let day = THREAD_MEMORY.as_secs() as i64;
    assert_eq!(
        reader.conversation_of(55, base + day).await.unwrap(),
        Some(chain)
    );
    assert_eq!(
        reader.conversation_of(55, base + day + 1).await.unwrap(),
        None
    );
    reader
        .link(55, ConversationKey::Thread(4), base + 20)
        .await
        .unwrap();
    assert_eq!(
        writer.conversation_of(55, base + 30).await.unwrap(),
        Some(ConversationKey::Thread(4))
    );
}

/// Turns and links are deleted with the other analytics, by the same retention setting.
async fn retention_purges_conversations_with_the_analytics(db: TestDb) {
    let store = db.open().await;
    let history = StoreHistory::new(
        Storage::start(store.clone(), StorageOptions::default(), true),
        HistoryLimits {
            turns: 10,
            max_age: Duration::from_secs(365 * 86_400),
        },
        "salt",
    );
    let now = now_unix();
    let key = ConversationKey::Thread(11);
    history
        .record(key, turn("old"), now - 40 * 86_400)
        .await
        .unwrap();
    history.link(100, key, now - 40 * 86_400).await.unwrap();
    history
        .record(key, turn("new"), now - 86_400)
        .await
        .unwrap();
    history.link(101, key, now - 3_600).await.unwrap();
    assert_eq!(
        questions(&history.recent(key, now).await.unwrap()),
        ["old", "new"]
    );
    assert_eq!(
        store.purge_older_than(30, now).await.unwrap(),
        2,
        "one turn, one link"
    );
    assert_eq!(questions(&history.recent(key, now).await.unwrap()), ["new"]);
    assert_eq!(history.conversation_of(101, now).await.unwrap(), Some(key));
    assert_eq!(store.purge_older_than(30, now).await.unwrap(), 0);
}

fn ask_in(conversation: ConversationKey, question: &str) -> Invocation {
    Invocation {
        conversation: Some(conversation),
        ..ask(5, Some(42), question)
    }
}

/// Two dispatchers over two handles of one database (two replicas): a follow-up in a thread is
/// read with the question the other asked there; a third dispatcher opened afterwards (a
/// restart) continues it too.
async fn a_thread_continues_on_another_replica_and_after_a_restart(db: TestDb) {
    let first = dispatcher(None, no_cooldown(), db.open().await);
    let second = dispatcher(None, no_cooldown(), db.open().await);
    let thread = ConversationKey::Thread(77);
    let question = "whats the total comp for a google L4 MLE?";
    let (report, _) = run(&first, ask_in(thread, question)).await;
    assert_eq!(report.outcome, Outcome::Answered);
    assert!(!report.follow_up);
    let (report, sent) = run(&second, ask_in(thread, "and at Meta?")).await;
    assert_eq!(report.outcome, Outcome::Answered, "{report:?}");
    assert!(report.follow_up, "the other replica's turn was read");
    let text = sent[0].to_string();
    assert!(text.contains("$300k–$420k"), "{text}");
    // Cited where Meta's figure is written (as in tests/conversation.rs).
    assert!(!report.citations.is_empty());
    assert!(
        report.citations.iter().all(|citation| {
            citation.ends_with("#compensation-the-real-bands-at-mid")
                || citation.ends_with("#key-takeaways")
        }),
        "{:?}",
        report.citations
    );
    drop((first, second));
    let restarted = dispatcher(None, no_cooldown(), db.open().await);
    let (report, _) = run(&restarted, ask_in(thread, "and the base?")).await;
    assert!(
        report.follow_up,
        "history outlives the processes that wrote it"
    );
    assert!(restarted
        .conversations()
        .is_bot_thread(77, now_unix())
        .await
        .unwrap());
}

/// Issue 16: history that cannot be written (the file locked by another process) never fails an
/// answer; the follow-up is then answered on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_without_history() {
    let (_dir, store, _locker) = locked_sqlite();
    let dispatcher = dispatcher(None, no_cooldown(), store);
    let thread = ConversationKey::Thread(78);
    for question in ["whats the total comp for a google L4 MLE?", "and at Meta?"] {
        let (report, sent) = run(&dispatcher, ask_in(thread, question)).await;
        assert!(!report.follow_up, "nothing could be recorded: {question}");
        assert_eq!(sent.len(), 1, "{question} answered");
        assert_ne!(report.outcome, Outcome::Invalid);
    }
    assert!(dispatcher
        .conversations()
        .record(thread, turn("x"), now_unix())
        .await
        .is_err());
}
