//! Whole-guide LLM context (issue 16): when the corpus fits `llm.whole_guide_tokens`, every
//! passage goes to the model in document order as a cacheable prefix (Anthropic: `search_result`
//! blocks with `cache_control` on the last; OpenAI-compatible: numbered in the system message),
//! refusals still never call the model, over the budget the top passages are sent, and the
//! providers' cache usage is read.

mod support;

use guidebot::answer::whole_corpus_passages;
use guidebot::engine::{AnswerOptions, Engine};
use guidebot::llm::ProviderKind;
use serde_json::json;
use support::fake_llm::{anthropic_message, json_response, openai_completion, FakeLlm};
use support::setup::{bundled_corpus, bundled_engine};

const QUESTION: &str = "whats the TC for a google L4 MLE?";
const OFF_TOPIC: &str = "what's the best pizza in naples?";

fn engine_with_budget(fake: &FakeLlm, budget: u64) -> Engine {
    let mut settings = fake.settings();
    settings.whole_guide_tokens = budget;
    bundled_engine(Some(settings))
}

#[tokio::test]
async fn anthropic_gets_every_passage_in_order_with_the_cache_marker() {
    let fake = FakeLlm::new(ProviderKind::Anthropic).await;
    let mut message = anthropic_message(
        json!([{"type": "text", "text": "Google L4 MLE total comp is $300k–$430k."}]),
        "end_turn",
        60,
        12,
    );
    message["usage"]["cache_read_input_tokens"] = json!(4000);
    fake.always(json_response(200, message)).await;
    let engine = engine_with_budget(&fake, 30_000);
    assert!(
        engine.sends_whole_guide(),
        "the bundled guide is about 4k tokens"
    );

    let answer = engine
        .answer(QUESTION, &AnswerOptions::default())
        .await
        .expect("an answer");
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1);
    let content = requests[0].body["messages"][0]["content"]
        .as_array()
        .expect("content blocks")
        .clone();
    let results: Vec<&serde_json::Value> = content
        .iter()
        .filter(|block| block["type"] == "search_result")
        .collect();
    let expected = whole_corpus_passages(&bundled_corpus());
    assert_eq!(
        results.len(),
        expected.len(),
        "every passage, not the top 5"
    );
    assert!(results.len() > 5);
    let sources: Vec<String> = results
        .iter()
        .map(|block| block["source"].as_str().unwrap().to_string())
        .collect();
    let in_order: Vec<String> = expected
        .iter()
        .map(|passage| format!("{}#{}", passage.guide, passage.section_id))
        .collect();
    assert_eq!(sources, in_order, "document order");
    assert!(sources[0].ends_with("#in-short"), "{sources:?}");
    // The marker sits on the last search result only: the whole prefix is cached.
    let marked: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, block)| block.get("cache_control").is_some())
        .map(|(index, _)| index)
        .collect();
    assert_eq!(marked, [results.len() - 1]);
    assert_eq!(
        results[results.len() - 1]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(content.last().unwrap()["text"], QUESTION);
    // Usage: every prompt token, and those read from the cache.
    let usage = answer.usage.expect("usage");
    assert_eq!(usage.input_tokens, 4060);
    assert_eq!(usage.cached_input_tokens, 4000);

    // A question the guides do not cover is refused without calling the model.
    let refused = engine
        .answer(OFF_TOPIC, &AnswerOptions::default())
        .await
        .expect("an answer");
    assert!(refused.refused);
    assert_eq!(fake.requests().await.len(), 1, "no LLM call for a refusal");
}

#[tokio::test]
async fn over_the_budget_the_top_passages_are_sent() {
    let fake = FakeLlm::new(ProviderKind::Anthropic).await;
    fake.always(fake.plain_answer("Google L4 MLE total comp is $300k–$430k."))
        .await;
    let engine = engine_with_budget(&fake, 100);
    assert!(!engine.sends_whole_guide());
    engine
        .answer(QUESTION, &AnswerOptions::default())
        .await
        .expect("an answer");
    let requests = fake.requests().await;
    let content = requests[0].body["messages"][0]["content"]
        .as_array()
        .unwrap()
        .clone();
    let results = content
        .iter()
        .filter(|block| block["type"] == "search_result")
        .count();
    assert!((1..=5).contains(&results), "{results}");
    assert!(content
        .iter()
        .all(|block| block.get("cache_control").is_none()));
}

#[tokio::test]
async fn openai_compatible_servers_get_a_stable_numbered_prefix() {
    let fake = FakeLlm::new(ProviderKind::OpenAi).await;
    let mut completion =
        openai_completion("Google L4 MLE total comp is $300k–$430k.", "stop", 4100, 12);
    completion["usage"]["prompt_tokens_details"] = json!({"cached_tokens": 3968});
    fake.always(json_response(200, completion)).await;
    let engine = engine_with_budget(&fake, 30_000);
    let first = engine
        .answer(QUESTION, &AnswerOptions::default())
        .await
        .expect("an answer");
    engine
        .answer("meta E4 DS total comp?", &AnswerOptions::default())
        .await
        .expect("an answer");
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 2);
    let system = |index: usize| {
        requests[index].body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(requests[0].body["messages"][0]["role"], "system");
    let count = whole_corpus_passages(&bundled_corpus()).len();
    assert!(system(0).contains("[1] "), "{}", system(0));
    assert!(system(0).contains(&format!("[{count}] ")));
    // The same prefix for both questions; only the user turn differs.
    assert_eq!(system(0), system(1));
    let user = requests[0].body["messages"][1]["content"].as_str().unwrap();
    assert_eq!(user, format!("Question: {QUESTION}"));
    let usage = first.usage.expect("usage");
    assert_eq!(
        (usage.input_tokens, usage.cached_input_tokens),
        (4100, 3968)
    );
}
