//! Extractive answers end to end through the engine: figures intact, quotes verbatim, an empty
//! question the only error. LLM answers (grounding, refusals, failures) are in `llm_answers.rs`.

mod support;

use guidebot::answer::AnswerMode;
use guidebot::engine::AnswerOptions;

use support::setup::bundled_engine as engine;

/// The default answer to `question` (extractive unless the engine has an LLM).
async fn ask(engine: &guidebot::engine::Engine, question: &str) -> guidebot::answer::Answer {
    engine
        .answer(question, &AnswerOptions::default())
        .await
        .expect("a non-empty question always gets an answer")
}

#[tokio::test]
async fn extractive_answers_quote_the_guide_with_figures_intact() {
    let engine = engine(None);
    let answer = ask(&engine, "whats the TC for a google L4 MLE?").await;
    assert_eq!(answer.mode, AnswerMode::Extractive);
    assert!(!answer.refused);
    assert!(answer.answer.contains("$300k–$430k"), "{}", answer.answer);
    assert!(answer.answer.contains("[1]"));
    assert!(
        answer.answer.split_whitespace().count() <= 160,
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
    let answer = ask(&engine, "🤔🤔").await;
    assert!(answer.refused);
}

/// Every citation of `answer` quotes the guide verbatim.
fn assert_quotes_verbatim(engine: &guidebot::engine::Engine, answer: &guidebot::answer::Answer) {
    for citation in &answer.citations {
        assert!(
            engine.corpus().contains_quote(&citation.quote),
            "{citation:?}"
        );
    }
}

/// A guide with a list of interview questions and, elsewhere, the answer to one of them.
fn question_list_engine() -> (tempfile::TempDir, guidebot::engine::Engine) {
    engine_over(
        "# LLM interviews\n\n## Sample questions\n\n\
         - What is the KV cache and why does it matter for inference?\n\
         - How does attention cost scale with sequence length?\n\
         - Why divide attention scores by the square root of the key dimension?\n\n\
         ## Transformer internals\n\n\
         The KV cache stores the keys and values of earlier tokens, so each new token is computed \
         without recomputing them. It dominates memory at long context.\n",
    )
}

/// An engine over one guide written in the test, with the hub's vocabulary.
fn engine_over(markdown: &str) -> (tempfile::TempDir, guidebot::engine::Engine) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("guide.md"), markdown).expect("guide written");
    // The hub's vocabulary: its question words ("what", "why") are not searched for.
    std::fs::copy(
        support::setup::bundled_corpus_dir().join("vocabulary.toml"),
        dir.path().join("vocabulary.toml"),
    )
    .expect("vocabulary copied");
    let corpus = support::setup::corpus_at(dir.path());
    let engine = guidebot::engine::Engine::in_memory(corpus, None).expect("engine");
    (dir, engine)
}

#[tokio::test]
async fn a_guides_own_question_is_not_the_answer_unless_questions_are_asked_for() {
    let (_dir, engine) = question_list_engine();
    let answer = ask(&engine, "what is the kv cache and why does it matter").await;
    assert!(!answer.refused, "{}", answer.answer);
    assert!(
        answer.answer.contains("dominates memory"),
        "{}",
        answer.answer
    );
    assert_eq!(answer.citations[0].section_id, "transformer-internals");
    // Asked which questions come up, the list is the answer.
    let answer = ask(&engine, "what questions do they ask about the kv cache").await;
    assert!(
        answer
            .answer
            .contains("What is the KV cache and why does it matter"),
        "{}",
        answer.answer
    );
}

#[tokio::test]
async fn a_lead_in_is_read_with_the_list_it_introduces() {
    let engine = engine(None);
    let answer = ask(
        &engine,
        "what actually changes in the day-to-day when you go from junior to mid?",
    )
    .await;
    assert!(
        answer.answer.contains("three concrete ways:"),
        "{}",
        answer.answer
    );
    // The list it introduces follows, from its first item.
    assert!(
        answer.answer.contains("• Scope ownership."),
        "{}",
        answer.answer
    );
}

#[tokio::test]
async fn member_of_technical_staff_is_a_title_not_the_staff_level() {
    let engine = engine(None);
    let answer = ask(
        &engine,
        "base salary for a mid level member of technical staff at anthropic?",
    )
    .await;
    assert!(!answer.refused, "{}", answer.answer);
    assert!(answer.answer.contains("$300k–$400k"), "{}", answer.answer);
    let answer = ask(&engine, "staff MLE TC at google").await;
    assert!(answer.refused, "{}", answer.answer);
    assert!(
        answer.answer.contains("no figures for staff"),
        "{}",
        answer.answer
    );
}

#[tokio::test]
async fn pay_for_an_employer_or_place_the_tables_do_not_cover_is_refused_by_name() {
    let engine = engine(None);
    let options = guidebot::search::SearchOptions { limit: 5 };
    for (question, missing) in [
        (
            "how much does airbnb pay a mid-level data scientist",
            "Airbnb",
        ),
        ("what do mid level data scientists make in london", "London"),
        ("jane street ML engineer total comp?", "Jane Street"),
        (
            "what does a new grad data scientist make at google?",
            "new grad",
        ),
    ] {
        let answer = ask(&engine, question).await;
        assert!(answer.refused, "{question}: {}", answer.answer);
        assert!(
            answer.answer.contains(&format!("no figures for {missing}")),
            "{question}: {}",
            answer.answer
        );
        // /search says the same: one relevance decision for every command.
        let results = engine.search(question, &options).unwrap();
        assert!(!results.relevant, "{question}");
    }
    // Covered employers (by name, alias or tier) and questions that are not about pay still answer.
    for (question, figure) in [
        ("what does facebook pay an E4 data scientist", "$300k–$420k"),
        (
            "how much do machine learning engineers make at google L4",
            "$300k–$430k",
        ),
    ] {
        let answer = ask(&engine, question).await;
        assert!(!answer.refused, "{question}: {}", answer.answer);
        assert!(
            answer.answer.contains(figure),
            "{question}: {}",
            answer.answer
        );
    }
    let answer = ask(
        &engine,
        "which companies hire for causal inference, like airbnb?",
    )
    .await;
    assert!(!answer.refused, "{}", answer.answer);
}

#[tokio::test]
async fn a_list_item_is_read_on_to_the_sentence_that_answers() {
    let engine = engine(None);
    let answer = ask(&engine, "why do people bomb the system design round at mid").await;
    // The rubric item's label and first sentence are not the answer; its last sentence is.
    assert!(
        answer.answer.contains("jump to model architecture"),
        "{}",
        answer.answer
    );
    assert_quotes_verbatim(&engine, &answer);
}

/// A short elaboration ("A high bounce rate may indicate ...") wins on length alone; the sentence
/// before it that introduces the same idea, and defines it, leads the answer.
#[tokio::test]
async fn the_sentence_that_introduces_an_idea_leads_its_elaboration() {
    let (_dir, engine) = engine_over(
        "# Product metrics\n\n## Engagement\n\n\
         - Click-through rate: the share of impressions that get a click.\n\
         - Bounce rate: bounce rate counts the share of visitors who open a single page and then \
         leave without any further action, such as opening a second page or clicking a link. \
         A high bounce rate suggests dull content.\n\n\
         ## Revenue\n\n\
         Revenue per user divides the period's revenue by its active users.\n",
    );
    let answer = ask(&engine, "what does bounce rate measure").await;
    assert!(!answer.refused, "{}", answer.answer);
    assert!(
        answer.answer.contains("leave without any further action"),
        "{}",
        answer.answer
    );
    assert!(answer.answer.contains("dull content"), "{}", answer.answer);
}

/// The guide's question that asks all the top hit's question asks, and more of the user's words,
/// is the one answered: "How many trees …?" rather than "What is random forest?".
#[tokio::test]
async fn the_guides_question_closest_to_the_users_is_answered() {
    let (_dir, engine) = engine_over(
        "# Interview questions\n\n## Random forest\n\n\
         **What is random forest?**\n\n\
         Random forest is a method made of many decision trees. Random forest trees are trained on \
         random samples of the data, and a random forest averages what its trees predict.\n\n\
         **How many trees do we need in random forest?**\n\n\
         There is no fixed rule: start from the square of the number of features, then tune.\n\n\
         ## Boosting\n\n\
         Boosting trains weak models one after another.\n",
    );
    let answer = ask(&engine, "how many trees should a random forest have").await;
    assert!(!answer.refused, "{}", answer.answer);
    assert!(
        answer.answer.contains("square of the number of features"),
        "{}",
        answer.answer
    );
    assert_quotes_verbatim(&engine, &answer);
}

/// A lead-in that ends its section ("The most common ones include:") is read with the list that
/// opens the next one, under its own heading.
#[tokio::test]
async fn a_lead_in_ending_its_section_is_read_with_the_next_sections_list() {
    let (_dir, engine) = engine_over(
        "# Coding rounds\n\n## The ML coding round\n\n\
         Only a few algorithms are expected to be coded from scratch in the ML coding round. \
         The most common ones include:\n\n\
         ### Algorithms to code\n\n\
         - Linear regression (code)\n\
         - Logistic regression (code)\n\
         - K-means clustering (code)\n\
         - K-nearest neighbors (code)\n\n\
         ## The general coding round\n\n\
         The general coding round is much like a software engineering one: data structures and \
         algorithms.\n",
    );
    let answer = ask(
        &engine,
        "which algorithms do i need to code from scratch in the ml coding round",
    )
    .await;
    assert!(!answer.refused, "{}", answer.answer);
    assert!(
        answer.answer.contains("The most common ones include:"),
        "{}",
        answer.answer
    );
    assert!(
        answer.answer.contains("• K-means clustering (code)"),
        "{}",
        answer.answer
    );
    assert_quotes_verbatim(&engine, &answer);
}

/// "MLSD" is how people write "ML system design": a question using it is answered, not refused
/// as if the abbreviation were a word no guide uses.
#[tokio::test]
async fn mlsd_is_read_as_ml_system_design() {
    let engine = engine(None);
    let answer = ask(
        &engine,
        "what are interviewers grading on in an MLSD interview?",
    )
    .await;
    assert!(!answer.refused, "{}", answer.answer);
    assert!(
        answer.answer.contains("Problem framing"),
        "{}",
        answer.answer
    );
}

/// "hyperparams" and "rec sys" are how people write hyperparameters and recommender systems.
#[tokio::test]
async fn common_abbreviations_of_the_field_find_their_passages() {
    let (_dir, engine) = engine_over(
        "# Modelling notes\n\n## Tuning\n\n\
         The learning rate is the hyper-parameter that matters most when tuning gradient boosting; \
         tune the number of trees with it.\n\n\
         ## Recommendations\n\n\
         A recommender system usually has a candidate generation stage and a ranking stage.\n\n\
         ## Data\n\n\
         Clean the data before anything else.\n",
    );
    for (question, wanted) in [
        ("which hyperparams matter most", "learning rate"),
        ("rec sys stages?", "candidate generation"),
    ] {
        let answer = ask(&engine, question).await;
        assert!(!answer.refused, "{question}: {}", answer.answer);
        assert!(
            answer.answer.contains(wanted),
            "{question}: {}",
            answer.answer
        );
    }
}
