//! Follow-ups through the engine (issue 16): a short or pronoun-heavy follow-up borrows the
//! earlier question's ideas at a lower weight ("and at Meta?" after a Google L4 pay question gets
//! Meta's row), a question that stands alone is searched alone, and in LLM mode the model gets the
//! earlier turns while citations still point only at passages that were sent.

mod support;

use guidebot::answer::AnswerMode;
use guidebot::engine::{AnswerOptions, Engine, PriorTurn};
use guidebot::llm::ProviderKind;
use support::fake_llm::scenarios::{Cite, Part, Script, META_ROW};
use support::fake_llm::FakeLlm;
use support::setup::bundled_engine;

const GOOGLE_PAY: &str = "whats the total comp for a google L4 MLE?";

/// Answers `question` after `history` as the bot does, and returns the turn it adds.
async fn ask(engine: &Engine, question: &str, history: &[PriorTurn]) -> (String, PriorTurn) {
    let answer = engine
        .answer(
            question,
            &AnswerOptions {
                history: history.to_vec(),
                ..AnswerOptions::default()
            },
        )
        .await
        .expect("an answer");
    assert!(!answer.refused, "{question} was refused: {}", answer.answer);
    assert!(!answer.citations.is_empty(), "{question}: no citation");
    let turn = PriorTurn {
        question: question.to_string(),
        standalone: engine.standalone_query(question, history),
        answer: answer.answer.clone(),
    };
    (answer.answer, turn)
}

#[tokio::test]
async fn and_at_meta_after_a_google_l4_pay_question_answers_with_metas_row() {
    let engine = bundled_engine(None);
    let (first, turn) = ask(&engine, GOOGLE_PAY, &[]).await;
    assert!(first.contains("$300k–$430k"), "{first}");
    let history = vec![turn];
    let answer = engine
        .answer(
            "and at Meta?",
            &AnswerOptions {
                history: history.clone(),
                ..AnswerOptions::default()
            },
        )
        .await
        .expect("an answer");
    assert!(!answer.refused, "{}", answer.answer);
    assert!(answer.answer.contains("$300k–$420k"), "{}", answer.answer);
    assert!(answer.citations.iter().all(|citation| [
        "compensation-the-real-bands-at-mid",
        "key-takeaways"
    ]
    .contains(&citation.section_id.as_str())));
    // Meta replaces Google in what is borrowed; the level and the pay words carry over.
    let standalone = engine.standalone_query("and at Meta?", &history);
    assert!(standalone.starts_with("and at Meta?"), "{standalone}");
    assert!(!standalone.contains("google"), "{standalone}");
    assert!(
        standalone.contains("l4") && standalone.contains("comp"),
        "{standalone}"
    );
}

#[tokio::test]
async fn a_follow_up_that_finds_nothing_alone_is_answered_in_context() {
    let engine = bundled_engine(None);
    let (_, turn) = ask(&engine, "how much does a databricks L4 MLE make", &[]).await;
    let (answer, turn2) = ask(&engine, "and the base?", std::slice::from_ref(&turn)).await;
    assert!(answer.contains("$190k–$250k"), "{answer}");
    assert!(answer.starts_with("Databricks MLE"), "{answer}");
    // Alone, the question does not know which company: its answer does not lead with Databricks
    // (it may list Databricks' row among others).
    let alone = engine
        .answer("and the base?", &AnswerOptions::default())
        .await
        .expect("an answer");
    assert!(
        !alone.answer.starts_with("Databricks MLE"),
        "{}",
        alone.answer
    );
    // A third turn keeps the topic through the chain of standalone queries.
    let (third, _) = ask(&engine, "and at scale ai?", &[turn, turn2]).await;
    assert!(third.contains("$210k–$280k"), "{third}");
}

#[tokio::test]
async fn a_question_that_stands_alone_borrows_nothing() {
    let engine = bundled_engine(None);
    let (_, turn) = ask(&engine, GOOGLE_PAY, &[]).await;
    let history = [turn];
    let switch = "do I need to know spark and distributed data processing at mid?";
    assert_eq!(engine.borrowed_terms(switch, &history).unwrap(), None);
    assert_eq!(engine.standalone_query(switch, &history), switch);
    let borrowed = engine
        .borrowed_terms("and at Meta?", &history)
        .unwrap()
        .expect("a continuation borrows");
    assert!(borrowed.weight > 0.0 && borrowed.weight < 1.0);
    // Without history nothing is borrowed, whatever the question looks like.
    assert_eq!(engine.borrowed_terms("and at Meta?", &[]).unwrap(), None);
}

/// The model gets the earlier turns as messages, and the answer shown is the model's own: written
/// by the provider (not the extractive fallback, which would also hold Meta's figures), its one
/// sentence kept by the checks, its citation the Meta row that was sent in this turn.
#[tokio::test]
async fn the_llm_gets_the_earlier_turns_and_cites_only_what_was_sent() {
    const WRITTEN: &str = "Meta E4 DS total comp is $300k–$420k";
    for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
        let fake = FakeLlm::new(kind).await;
        fake.always(Script(vec![
            Part::Cited(WRITTEN, vec![Cite::Block(META_ROW)]),
            Part::Text("."),
        ]))
        .await;
        let engine = bundled_engine(Some(fake.settings()));
        let history = vec![PriorTurn {
            question: GOOGLE_PAY.to_string(),
            standalone: GOOGLE_PAY.to_string(),
            answer: "Google MLE L4 total comp is $300k–$430k.".to_string(),
        }];
        let answer = engine
            .answer(
                "and at Meta?",
                &AnswerOptions {
                    history,
                    ..AnswerOptions::default()
                },
            )
            .await
            .expect("an answer");
        let requests = fake.requests().await;
        assert_eq!(requests.len(), 1, "{kind:?}: one LLM call");
        let messages = requests[0].body["messages"]
            .as_array()
            .expect("messages")
            .clone();
        let turns: Vec<(&str, String)> = messages
            .iter()
            .filter(|message| message["role"] != "system")
            .map(|message| {
                (
                    message["role"].as_str().unwrap_or(""),
                    message["content"].to_string(),
                )
            })
            .collect();
        assert_eq!(turns.len(), 3, "{kind:?}: {turns:?}");
        assert_eq!(turns[0].0, "user");
        assert!(turns[0].1.contains(GOOGLE_PAY));
        assert_eq!(turns[1].0, "assistant");
        assert!(turns[1].1.contains("$300k–$430k"));
        assert_eq!(turns[2].0, "user");
        // Retrieval read the follow-up in context: Meta's row was among the passages sent.
        assert!(turns[2].1.contains(META_ROW), "{kind:?}: {}", turns[2].1);
        assert!(turns[2].1.contains("and at Meta?"));
        // The model's answer, not the extractive fallback: its mode, no fallback, nothing
        // trimmed, and its words.
        let provider = match kind {
            ProviderKind::OpenAi => AnswerMode::OpenAi,
            ProviderKind::Anthropic => AnswerMode::Anthropic,
        };
        assert_eq!(answer.mode, provider, "{kind:?}: {}", answer.answer);
        assert_eq!(answer.fallback, None, "{kind:?}: {:?}", answer.note);
        assert_eq!(answer.trimmed_sentences, 0, "{kind:?}");
        assert_eq!(answer.answer, format!("{WRITTEN} [1]."), "{kind:?}");
        // The citation check kept the one citation: the Meta row, sent in this turn.
        let quotes: Vec<&str> = answer
            .citations
            .iter()
            .map(|citation| citation.quote.as_str())
            .collect();
        assert_eq!(quotes, [META_ROW], "{kind:?}");
        assert!(turns[2].1.contains(quotes[0]), "{kind:?}: unsent quote");
        assert_eq!(
            answer.citations[0].section_id, "compensation-the-real-bands-at-mid",
            "{kind:?}"
        );
    }
}
