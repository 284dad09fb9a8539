//! Vocabulary concepts and index layout (issue 2, "Search" and "Performance"): synonyms reach the
//! passages that use another term of their group, a typed word's group does not re-count its own
//! mentions, snippets bold what matched, and the bundled guide is one segment on disk.

use guidebot::corpus::Corpus;
use guidebot::search::{SearchIndex, SearchOptions, SearchResults};
use std::path::Path;
use std::sync::OnceLock;

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        Corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"))
            .expect("bundled corpus loads")
    })
}

fn index() -> &'static SearchIndex {
    static INDEX: OnceLock<SearchIndex> = OnceLock::new();
    INDEX.get_or_init(|| SearchIndex::build_in_ram(corpus()).expect("index builds"))
}

fn search(text: &str) -> SearchResults {
    index()
        .search(text, &SearchOptions { limit: 5 })
        .expect("search succeeds")
}

fn top_sections(results: &SearchResults, count: usize) -> Vec<&str> {
    results
        .hits
        .iter()
        .take(count)
        .map(|hit| hit.section_id.as_str())
        .collect()
}

#[test]
fn an_abbreviation_the_guide_never_uses_finds_the_passage_through_its_group() {
    // "yoe" is not in the guide; its group ("years of experience", "years") is.
    let results = search("how many yoe counts as mid level?");
    assert!(results.relevant, "{results:?}");
    assert!(
        top_sections(&results, 5).contains(&"in-short"),
        "{:?}",
        top_sections(&results, 5)
    );
}

#[test]
fn a_typed_term_is_not_counted_again_through_its_group() {
    // "inference" is in the deploy group (deploy, serving, inference...) and in "causal inference".
    // The group widens the question to deployment and serving; it must not add a second score to
    // every "inference", which once put the causal-inference FAQ first.
    let results = search("did they quantize the model for inference? with what");
    assert_eq!(
        top_sections(&results, 1),
        vec!["what-a-mid-level-ml-project-actually-looks-like-end-to-end"],
        "{:?}",
        top_sections(&results, 5)
    );
    assert!(
        results.hits[0].text.contains("bitsandbytes"),
        "{:?}",
        results.hits[0].text
    );
}

#[test]
fn a_synonym_is_found_and_every_matched_word_is_bold_in_the_snippet() {
    let results = search("what's the TC for a google L4 MLE");
    let best = &results.hits[0];
    assert_eq!(best.section_id, "compensation-the-real-bands-at-mid");
    for word in ["**Google**", "**L4**", "**Total**"] {
        assert!(
            best.snippet.contains(word),
            "{word} not bold in {:?}",
            best.snippet
        );
    }
}

#[test]
fn the_bundled_guide_is_one_segment_on_disk() {
    let directory = tempfile::tempdir().expect("temp dir");
    let (index, _) =
        SearchIndex::open_or_build(corpus(), directory.path()).expect("index builds on disk");
    assert_eq!(index.segment_count(), 1);
    assert_eq!(index.passage_count() as usize, corpus().passages().count());
}

#[test]
fn hedges_and_chat_filler_are_question_words_not_unknown_topics() {
    // "honestly", "specifically", "exactly", "ngl"… name no topic: as unknown words they carried
    // the rarest weight and got answerable questions refused.
    let plain = search("which spark skills are expected at mid");
    assert!(plain.relevant);
    for filler in [
        "honestly",
        "specifically",
        "exactly",
        "ngl",
        "tbh",
        "kinda",
        "realistically",
        "ppl",
    ] {
        let hedged = search(&format!("{filler} which spark skills are expected at mid"));
        assert!(hedged.relevant, "{filler}");
        assert_eq!(
            hedged.features.unknown_share, plain.features.unknown_share,
            "{filler}"
        );
        assert_eq!(
            top_sections(&hedged, 1),
            top_sections(&plain, 1),
            "{filler}"
        );
    }
}

#[test]
fn field_abbreviations_find_the_spelled_out_terms() {
    // The shipped vocabulary beside a small guide that only spells the terms out.
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("corpus/vocabulary.toml"),
        dir.path().join("vocabulary.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notes.md"),
        "# Interview notes\n\n\
         ## Backpropagation\n\nBackpropagation applies the chain rule layer by layer to get every weight's gradient.\n\n\
         ## Gradient boosting\n\nGradient boosting fits each new tree to the residual errors of the trees before it.\n\n\
         ## Central limit theorem\n\nThe central limit theorem says sample means tend to a normal distribution.\n\n\
         ## Coding rounds\n\nMost loops still include a round on data structures and algorithms.\n\n\
         ## Regularizing deep models\n\nA neural network is regularized with dropout, weight decay and early stopping.\n",
    )
    .unwrap();
    let corpus = Corpus::load(dir.path()).unwrap();
    let index = SearchIndex::build_in_ram(&corpus).unwrap();
    for (question, section) in [
        ("backprop explained?", "backpropagation"),
        ("what does a GBM fit at each step", "gradient-boosting"),
        (
            "is the normal distribution a CLT thing",
            "central-limit-theorem",
        ),
        ("do MLE loops still have DSA rounds", "coding-rounds"),
        ("how do you regularize a NN", "regularizing-deep-models"),
    ] {
        let results = index.search(question, &SearchOptions { limit: 3 }).unwrap();
        assert_eq!(
            results.hits.first().map(|hit| hit.section_id.as_str()),
            Some(section),
            "{question}"
        );
    }
}

#[test]
fn an_acronym_and_its_plural_are_one_word() {
    // The English stemmer keeps the "s" after a word without a vowel, so "VLMs" in a heading and
    // "VLM" in a question were different words and the section was not found at all.
    let corpus = Corpus::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpora/ml-interviews-alirezadir"),
    )
    .expect("test corpus loads");
    let index = SearchIndex::build_in_ram(&corpus).expect("index builds");
    for question in [
        "VLM architecture",
        "what's a VLM built from",
        "vlms architecture?",
    ] {
        let results = index
            .search(question, &SearchOptions { limit: 5 })
            .expect("search succeeds");
        assert!(
            top_sections(&results, 3).contains(&"vision-language-models-vlms"),
            "{question}: {:?}",
            top_sections(&results, 5)
        );
    }
}

#[test]
fn words_side_by_side_as_the_question_has_them_beat_the_same_words_apart() {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::write(
        dir.path().join("pairs.md"),
        "# Pairs\n\n## Training data\n\nEach class gets its own folder. Load imbalance across \
         workers slows training down. The class folder names come from the label map.\n\n\
         ## Sampling\n\nClass imbalance is handled by resampling rare labels, with a weighted \
         loss and a longer schedule for the long tail of examples in every batch.\n",
    )
    .expect("guide written");
    let corpus = Corpus::load(dir.path()).expect("corpus loads");
    let index = SearchIndex::build_in_ram(&corpus).expect("index builds");
    for question in ["class imbalance", "how do i deal with imbalance of classes"] {
        let results = index
            .search(question, &SearchOptions { limit: 5 })
            .expect("search succeeds");
        assert_eq!(
            top_sections(&results, 1),
            vec!["sampling"],
            "{question}: {:?}",
            top_sections(&results, 5)
        );
    }
}
