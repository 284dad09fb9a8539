//! Extractive answers end to end through the engine: figures intact, quotes verbatim, an empty
//! question the only error. LLM answers (grounding, refusals, failures) are in `llm_answers.rs`.

mod support;

use guidebot::answer::AnswerMode;
use guidebot::engine::AnswerOptions;

use support::setup::bundled_engine as engine;

#[tokio::test]
async fn extractive_answers_quote_the_guide_with_figures_intact() {
    let engine = engine(None);
    let answer = engine
        .answer(
            "whats the TC for a google L4 MLE?",
            &AnswerOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(answer.mode, AnswerMode::Extractive);
    assert!(!answer.refused);
    assert!(answer.answer.contains("$300k–$430k"), "{}", answer.answer);
    assert!(answer.answer.contains("[1]"));
    assert!(
        answer.answer.split_whitespace().count() <= 130,
        "{}",
        answer.answer
    );
    assert!(!answer.citations.is_empty());
    for citation in &answer.citations {
        assert!(
            engine.corpus().contains_quote(&citation.quote),
            "{citation:?}"
        );
        assert!(answer.answer.contains(&format!("[{}]", citation.n)));
    }
}

#[tokio::test]
async fn an_empty_question_is_the_only_error() {
    let engine = engine(None);
    assert!(engine
        .answer("   ", &AnswerOptions::default())
        .await
        .is_err());
    let answer = engine
        .answer("🤔🤔", &AnswerOptions::default())
        .await
        .unwrap();
    assert!(answer.refused);
}
