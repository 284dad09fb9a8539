//! The LLM allowances no other test sets: server-wide request and token budgets, per-user token
//! budgets and the per-user cooldown. Each is driven through the dispatcher with a fake
//! OpenAI-compatible server: the question over the limit gets the extractive answer with the
//! reason in its note, and the model is not called for it.

mod support;

use guidebot::bot::dispatch::{Budgets, ResponderError};
use guidebot::bot::render::{Rendered, Reply};
use guidebot::bot::request::{BotRequest, Invocation};
use guidebot::bot::{BotSettings, Dispatcher, NoObserver, Outcome, Responder};
use guidebot::engine::{Engine, EngineHandle};
use guidebot::store::{SqliteStore, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_llm::*;
use support::setup::{bundled_corpus_dir, corpus_at};

/// Tokens the fake reports for one answer (input + output).
const TOKENS_PER_ANSWER: u64 = 850;

/// Keeps the text of every message the dispatcher sends.
#[derive(Default)]
struct TextResponder {
    sent: Mutex<Vec<String>>,
}

impl Responder for TextResponder {
    async fn respond(&self, reply: Reply) -> Result<(), ResponderError> {
        let json = serde_json::to_string(&reply.to_interaction_response()).unwrap_or_default();
        self.sent.lock().unwrap().push(json);
        Ok(())
    }
    async fn edit(&self, rendered: Rendered) -> Result<(), ResponderError> {
        let json = serde_json::to_string(&rendered.to_edit()).unwrap_or_default();
        self.sent.lock().unwrap().push(json);
        Ok(())
    }
}

/// What one question got: the answer's mode, the fallback's label, whether it was refused or
/// deferred, and everything sent.
struct Asked {
    mode: Option<&'static str>,
    fallback: Option<&'static str>,
    refused: bool,
    deferred: bool,
    sent: String,
}

struct Bot {
    dispatcher: Dispatcher,
    fake: FakeLlm,
}

impl Bot {
    async fn new(budgets: Budgets, cooldown: Duration) -> Bot {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("in-memory store"));
        Bot::with(budgets, cooldown, Some(store)).await
    }

    /// A bot whose store could not be opened (`serve` then runs without one).
    async fn without_store(budgets: Budgets) -> Bot {
        Bot::with(budgets, Duration::ZERO, None).await
    }

    async fn with(budgets: Budgets, cooldown: Duration, store: Option<Arc<dyn Store>>) -> Bot {
        let fake = FakeLlm::openai_google_l4_answer().await;
        let engine = Engine::in_memory(corpus_at(&bundled_corpus_dir()), Some(fake.settings()))
            .expect("the bundled guide indexes");
        let settings = BotSettings {
            budgets,
            llm_cooldown: cooldown,
            edit_interval: Duration::ZERO,
            answer_cache_ttl: Duration::ZERO,
            ..BotSettings::default()
        };
        let mut dispatcher = Dispatcher::new(
            Arc::new(EngineHandle::new(engine)),
            settings,
            Arc::new(NoObserver),
        );
        if let Some(store) = store {
            dispatcher = dispatcher.with_store(store);
        }
        Bot { dispatcher, fake }
    }

    async fn ask(&self, user_id: u64, guild_id: Option<u64>, question: &str) -> Asked {
        let responder = TextResponder::default();
        let invocation = Invocation {
            user_id,
            guild_id,
            channel_id: Some(1),
            conversation: None,
            request: BotRequest::Ask {
                question: question.to_string(),
                private: false,
            },
        };
        let report = self
            .dispatcher
            .run_interaction(invocation, &responder)
            .await
            .expect("the question is answered");
        let sent = responder.sent.lock().unwrap().join("\n");
        Asked {
            mode: report.mode.map(|mode| mode.as_str()),
            fallback: report.fallback.as_ref().map(|reason| reason.label()),
            refused: report.outcome == Outcome::Refused,
            deferred: report.deferred,
            sent,
        }
    }

    async fn llm_calls(&self) -> usize {
        self.fake.requests().await.len()
    }
}

const PAY: &str = "whats the TC for a google L4 MLE?";
const OTHER_PAY: &str = "what does meta pay an E4 data scientist";

fn assert_over_budget(asked: &Asked) {
    assert_eq!(asked.mode, Some("extractive"), "{}", asked.sent);
    assert_eq!(asked.fallback, Some("over_budget"), "{}", asked.sent);
    assert!(
        asked.sent.contains("budget"),
        "the note says why: {}",
        asked.sent
    );
}

#[tokio::test]
async fn a_server_request_budget_is_shared_by_everyone_in_that_server() {
    let budgets = Budgets {
        guild_requests_per_day: Some(1),
        ..Budgets::default()
    };
    let bot = Bot::new(budgets, Duration::ZERO).await;

    let first = bot.ask(1, Some(42), PAY).await;
    assert_eq!(first.mode, Some("openai"), "{}", first.sent);
    let second_user = bot.ask(2, Some(42), OTHER_PAY).await;
    assert_over_budget(&second_user);
    assert_eq!(
        bot.llm_calls().await,
        1,
        "no LLM call over the server's budget"
    );

    // Another server, and a direct message, have their own allowance.
    let elsewhere = bot.ask(2, Some(43), OTHER_PAY).await;
    assert_eq!(elsewhere.mode, Some("openai"), "{}", elsewhere.sent);
    let direct = bot.ask(3, None, OTHER_PAY).await;
    assert_eq!(direct.mode, Some("openai"), "{}", direct.sent);
}

#[tokio::test]
async fn a_server_token_budget_stops_llm_answers_once_spent() {
    let budgets = Budgets {
        guild_tokens_per_day: Some(TOKENS_PER_ANSWER + 100),
        ..Budgets::default()
    };
    let bot = Bot::new(budgets, Duration::ZERO).await;

    assert_eq!(bot.ask(1, Some(42), PAY).await.mode, Some("openai"));
    // 850 of 950 tokens spent: under the limit, so one more answer is allowed...
    assert_eq!(bot.ask(2, Some(42), OTHER_PAY).await.mode, Some("openai"));
    // ...and then the server is over it, whoever asks.
    assert_over_budget(&bot.ask(3, Some(42), PAY).await);
    assert_eq!(bot.llm_calls().await, 2);
}

#[tokio::test]
async fn a_user_token_budget_applies_to_that_user_only() {
    let budgets = Budgets {
        user_tokens_per_day: Some(TOKENS_PER_ANSWER),
        ..Budgets::default()
    };
    let bot = Bot::new(budgets, Duration::ZERO).await;

    assert_eq!(bot.ask(1, Some(42), PAY).await.mode, Some("openai"));
    assert_over_budget(&bot.ask(1, Some(42), OTHER_PAY).await);
    assert_eq!(
        bot.ask(2, Some(42), OTHER_PAY).await.mode,
        Some("openai"),
        "another user's tokens are their own"
    );
    assert_eq!(bot.llm_calls().await, 2);
}

#[tokio::test]
async fn a_second_llm_question_within_the_cooldown_is_answered_extractively() {
    let bot = Bot::new(Budgets::default(), Duration::from_secs(600)).await;

    assert_eq!(bot.ask(1, Some(42), PAY).await.mode, Some("openai"));
    let throttled = bot.ask(1, Some(42), OTHER_PAY).await;
    assert_eq!(throttled.mode, Some("extractive"), "{}", throttled.sent);
    assert_eq!(throttled.fallback, Some("throttled"), "{}", throttled.sent);
    assert!(
        throttled.sent.contains("limit for written answers"),
        "the note says why: {}",
        throttled.sent
    );
    // The cooldown is per user.
    assert_eq!(bot.ask(2, Some(42), OTHER_PAY).await.mode, Some("openai"));
    assert_eq!(bot.llm_calls().await, 2);
}

/// A question the guides do not cover never reaches the model, so it spends nothing: it is
/// answered at once (not deferred), charges no request against the server's budget and starts no
/// cooldown — the next covered question still gets the one LLM answer the server has left.
#[tokio::test]
async fn a_refused_question_charges_no_budget_and_starts_no_cooldown() {
    let budgets = Budgets {
        guild_requests_per_day: Some(1),
        ..Budgets::default()
    };
    let bot = Bot::new(budgets, Duration::from_secs(600)).await;

    let refused = bot
        .ask(1, Some(42), "what's the visa sponsorship policy for pets?")
        .await;
    assert!(refused.refused, "{}", refused.sent);
    assert!(!refused.deferred, "answered at once: {}", refused.sent);
    assert_eq!(refused.fallback, None, "{}", refused.sent);
    let covered = bot.ask(1, Some(42), PAY).await;
    assert_eq!(covered.mode, Some("openai"), "{}", covered.sent);
    assert_eq!(bot.llm_calls().await, 1);
}

/// Issue 14: a store that could not be opened must not switch the budgets off. With budgets
/// configured and no store to count against, LLM answers are refused (the answer is extractive,
/// saying why) and the model is never called; without budgets the LLM still answers.
#[tokio::test]
async fn without_a_store_configured_budgets_refuse_llm_answers_instead_of_lapsing() {
    let budgets = Budgets {
        user_requests_per_day: Some(100),
        ..Budgets::default()
    };
    let bot = Bot::without_store(budgets).await;
    let asked = bot.ask(1, Some(42), PAY).await;
    assert_eq!(asked.mode, Some("extractive"), "{}", asked.sent);
    assert_eq!(asked.fallback, Some("store_unavailable"), "{}", asked.sent);
    assert_eq!(
        bot.llm_calls().await,
        0,
        "no LLM call without a budget check"
    );

    let unlimited = Bot::without_store(Budgets::default()).await;
    assert_eq!(unlimited.ask(1, Some(42), PAY).await.mode, Some("openai"));
}
