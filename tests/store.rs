//! Feedback, analytics, budgets and the answer cache through the dispatcher, with the SQLite store:
//! budgets hold across a restart, the cache is keyed by the index fingerprint, retention deletes old
//! rows, and a broken database never stops an answer.

mod support;

use guidebot::bot::dispatch::{Budgets, ResponderError};
use guidebot::bot::render::{Rendered, Reply};
use guidebot::bot::request::{BotRequest, Invocation};
use guidebot::bot::{BotSettings, Dispatcher, NoObserver, Outcome, Responder};
use guidebot::corpus::Corpus;
use guidebot::engine::{Engine, EngineHandle};
use guidebot::llm::LlmSettings;
use guidebot::store::{SqliteStore, Store};
use guidebot::util::clock::now_unix;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_llm::*;

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

use support::setup::{bundled_corpus_dir as bundled_dir, corpus_at};

fn dispatcher(
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
    let fake = FakeLlm::openai().await;
    fake.always(sse_response(openai_sse(
        &[
            openai_chunk(
                Some("Google L4 MLE total comp is $300k–$430k [1]."),
                Some("stop"),
            ),
            openai_usage_chunk(800, 50),
        ],
        true,
    )))
    .await;
    fake
}

fn no_cooldown() -> BotSettings {
    BotSettings {
        llm_cooldown: Duration::ZERO,
        edit_interval: Duration::ZERO,
        ..BotSettings::default()
    }
}

#[tokio::test]
async fn feedback_and_questions_are_stored_with_hashed_ids() {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let dispatcher = dispatcher(
        corpus_at(&bundled_dir()),
        None,
        no_cooldown(),
        store.clone(),
    );
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
    let report = store.report(7, now_unix()).unwrap();
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
    // The ack for the feedback press is ephemeral (flag 64).
    let sent = responder.sent.lock().unwrap();
    assert_eq!(sent[1]["data"]["flags"], 64);
}

#[tokio::test]
async fn budgets_hold_across_a_restart() {
    let fake = fake_openai().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("guidebot.sqlite");
    let settings = BotSettings {
        budgets: Budgets {
            user_requests_per_day: Some(1),
            ..Budgets::default()
        },
        answer_cache_ttl: Duration::ZERO,
        ..no_cooldown()
    };
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
        let dispatcher = dispatcher(
            corpus_at(&bundled_dir()),
            Some(fake.settings()),
            settings.clone(),
            store,
        );
        let report = dispatcher
            .run_interaction(
                ask(7, None, "whats the TC for a google L4 MLE?"),
                &RecordingResponder::default(),
            )
            .await
            .unwrap();
        assert_eq!(report.mode.map(|m| m.as_str()), Some("openai"));
        assert!(report.deferred);
    }
    // A new process: same database file, budget already spent.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    let dispatcher = dispatcher(
        corpus_at(&bundled_dir()),
        Some(fake.settings()),
        settings,
        store,
    );
    let responder = RecordingResponder::default();
    let report = dispatcher
        .run_interaction(
            ask(7, None, "what does meta pay an E4 data scientist"),
            &responder,
        )
        .await
        .unwrap();
    assert_eq!(report.mode.map(|m| m.as_str()), Some("extractive"));
    assert_eq!(
        report.fallback.as_ref().map(|f| f.label()),
        Some("over_budget")
    );
    assert!(!report.deferred, "an extractive answer is sent directly");
    let first_sent = responder.sent.lock().unwrap()[0].clone();
    let description = first_sent["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap();
    assert!(description.contains("budget"), "{description}");
    assert_eq!(fake.requests().await.len(), 1, "no LLM call over budget");
    // Another user still has their budget.
    let report = dispatcher
        .run_interaction(
            ask(8, None, "whats the TC for a google L4 MLE?"),
            &RecordingResponder::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.mode.map(|m| m.as_str()), Some("openai"));
}

#[tokio::test]
async fn cached_answers_skip_the_llm_until_the_corpus_changes() {
    let fake = fake_openai().await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let question = "whats the TC for a google L4 MLE?";
    let first = dispatcher(
        corpus_at(&bundled_dir()),
        Some(fake.settings()),
        no_cooldown(),
        store.clone(),
    );
    let report = first
        .run_interaction(ask(1, None, question), &RecordingResponder::default())
        .await
        .unwrap();
    assert!(!report.cached);
    let report = first
        .run_interaction(
            ask(2, None, "Whats the TC for a Google L4 MLE??"),
            &RecordingResponder::default(),
        )
        .await
        .unwrap();
    assert!(
        report.cached,
        "same normalized question, same index: served from the cache"
    );
    assert_eq!(report.mode.map(|m| m.as_str()), Some("openai"));
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
    let second = dispatcher(
        corpus_at(dir.path()),
        Some(fake.settings()),
        no_cooldown(),
        store,
    );
    let report = second
        .run_interaction(ask(3, None, question), &RecordingResponder::default())
        .await
        .unwrap();
    assert!(!report.cached);
    assert_eq!(fake.requests().await.len(), 2);
}

#[tokio::test]
async fn retention_deletes_old_rows() {
    let store = SqliteStore::in_memory().unwrap();
    let now = now_unix();
    for (age_days, question) in [(40, "old question"), (1, "new question")] {
        store
            .record_question(&guidebot::store::QuestionRecord {
                at_unix: now - age_days * 86_400,
                user_hash: "u".into(),
                guild_hash: None,
                command: "ask".into(),
                question: question.into(),
                refused: false,
                mode: "extractive".into(),
                top_coverage: Some(1.0),
                answer_key: None,
                citations: vec![],
                fingerprint: "f".into(),
            })
            .unwrap();
    }
    assert_eq!(store.purge_older_than(30, now).unwrap(), 1);
    let report = store.report(365, now).unwrap();
    assert_eq!(report.questions, 1);
    assert_eq!(report.most_asked[0].0, "new question");
}

#[tokio::test]
async fn a_locked_or_unwritable_database_never_stops_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("guidebot.sqlite");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    // Another connection holds the write lock for the whole test (as a stuck writer would).
    let locker = rusqlite::Connection::open(&db).unwrap();
    locker
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO usage (scope, day, requests, tokens) VALUES ('x', 'y', 1, 1);")
        .unwrap();
    let fake = fake_openai().await;
    let settings = BotSettings {
        budgets: Budgets {
            user_requests_per_day: Some(5),
            ..Budgets::default()
        },
        ..no_cooldown()
    };
    let dispatcher = dispatcher(
        corpus_at(&bundled_dir()),
        Some(fake.settings()),
        settings,
        store.clone(),
    );
    let responder = RecordingResponder::default();
    let report = dispatcher
        .run_interaction(
            ask(1, Some(2), "whats the TC for a google L4 MLE?"),
            &responder,
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Answered);
    let sent = responder.sent.lock().unwrap();
    let last = sent.last().unwrap();
    assert!(last["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .contains("$300k–$430k"));
    let scope = guidebot::store::BudgetScope::User("someone".into());
    assert!(
        store.add_usage(&scope, "2026-11-28", 1).is_err(),
        "the lock is real"
    );
}

#[tokio::test]
async fn report_exports_questions_to_label_in_the_eval_format() {
    let store = SqliteStore::in_memory().unwrap();
    let now = now_unix();
    store
        .record_question(&guidebot::store::QuestionRecord {
            at_unix: now,
            user_hash: "u".into(),
            guild_hash: None,
            command: "ask".into(),
            question: "is a \"PhD\" required?".into(),
            refused: true,
            mode: "extractive".into(),
            top_coverage: Some(0.1),
            answer_key: None,
            citations: vec![],
            fingerprint: "f".into(),
        })
        .unwrap();
    let report = store.report(7, now).unwrap();
    let exported = guidebot::cli::export_eval_toml(&report);
    let set = guidebot::eval::EvalSet::parse("export", &exported).unwrap();
    assert_eq!(set.questions.len(), 1);
    assert_eq!(set.questions[0].text, "is a \"PhD\" required?");
    assert!(set.questions[0].tags.contains(&"refused".to_string()));
}
