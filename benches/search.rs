//! Criterion benches of the retrieval core (issue 2, "Performance"). Figures and how to read them are
//! in BENCHMARKS.md; the p50/p90/p99 the targets are stated in come from `examples/search_latency.rs`.
//!
//! Run: `cargo bench --bench search` (about 3-4 minutes on 2 cores; the synthetic corpus is written
//! and indexed once, in a temporary folder). Filter with `cargo bench --bench search -- guide`.
//!
//! Environment:
//! - `GUIDEBOT_BENCH_PASSAGES` — size of the synthetic corpus (default 100,000).
//! - `GUIDEBOT_BENCH_BUILD_PASSAGES` — size of the corpus the `build` bench rebuilds each sample
//!   (default 100,000; criterion needs 10 samples, so this bench alone takes 10 full builds).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use guidebot::corpus::Corpus;
use guidebot::eval::EvalSet;
use guidebot::search::{SearchIndex, SearchOptions};
use guidebot::synthetic::write_synthetic_corpus;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Every question of the eval set, answerable and off-topic, in file order.
fn eval_questions() -> Vec<String> {
    let set = EvalSet::load(&repo_path("tests/eval/dev.toml")).expect("eval set loads");
    set.questions
        .iter()
        .map(|question| question.text.clone())
        .chain(set.off_topic.iter().map(|question| question.text.clone()))
        .collect()
}

/// Runs `work` over the questions round-robin, one question per iteration, so the figure is the
/// mean per question.
fn round_robin<T>(
    criterion_bencher: &mut criterion::Bencher<'_>,
    questions: &[String],
    work: impl Fn(&str) -> T,
) {
    let mut next = 0usize;
    criterion_bencher.iter(|| {
        let question = &questions[next % questions.len()];
        next += 1;
        black_box(work(black_box(question)))
    });
}

/// [`round_robin`] over the index's search.
fn query_round_robin(
    criterion_bencher: &mut criterion::Bencher<'_>,
    index: &SearchIndex,
    questions: &[String],
) {
    let options = SearchOptions::default();
    round_robin(criterion_bencher, questions, |question| {
        index.search(question, &options).expect("search succeeds")
    });
}

fn bench_guide(criterion: &mut Criterion) {
    let corpus = Corpus::load(&repo_path("corpus")).expect("bundled corpus loads");
    let questions = eval_questions();
    let index = SearchIndex::build_in_ram(&corpus).expect("index builds");
    let mut group = criterion.benchmark_group("guide");
    group
        .measurement_time(Duration::from_secs(8))
        .sample_size(100);
    group.bench_function("query_eval_questions_in_ram", |bencher| {
        query_round_robin(bencher, &index, &questions)
    });
    // Issue 3's target: the extractive `ask` (search + sentence selection + quote checks).
    let engine = guidebot::engine::Engine::in_memory(corpus.clone(), None).expect("engine builds");
    group.bench_function("ask_extractive_eval_questions", |bencher| {
        round_robin(bencher, &questions, |question| {
            engine.answer_extractive(question).expect("answers")
        })
    });
    // What `/search` serves: the engine's search, with the gates above the index (pay coverage).
    group.bench_function("engine_search_eval_questions", |bencher| {
        let options = SearchOptions::default();
        round_robin(bencher, &questions, |question| {
            engine.search(question, &options).expect("search succeeds")
        })
    });
    group.finish();
}

fn bench_open(criterion: &mut Criterion) {
    // Open a built index (the fingerprint matches, nothing is rebuilt) and answer one question: what
    // every CLI command pays before its real work. Loading the corpus is included, as in the CLI.
    let corpus_dir = repo_path("corpus");
    let temp = tempfile::tempdir().expect("temp dir");
    let index_dir = temp.path().join("index");
    let corpus = Corpus::load(&corpus_dir).expect("bundled corpus loads");
    SearchIndex::build(&corpus, &index_dir).expect("index builds");
    let options = SearchOptions::default();
    let mut group = criterion.benchmark_group("guide");
    group
        .measurement_time(Duration::from_secs(8))
        .sample_size(50);
    group.bench_function("load_corpus_open_index_first_query", |bencher| {
        bencher.iter(|| {
            let corpus = Corpus::load(&corpus_dir).expect("corpus loads");
            open_and_first_query(&corpus, &index_dir, &options)
        })
    });
    group.finish();
}

/// Opens the built index for `corpus` (it must match, not rebuild) and answers one question.
fn open_and_first_query(
    corpus: &Corpus,
    index_dir: &Path,
    options: &SearchOptions,
) -> guidebot::search::SearchResults {
    let (index, outcome) = SearchIndex::open_or_build(corpus, index_dir).expect("index opens");
    assert_eq!(outcome, guidebot::search::OpenOutcome::Opened);
    black_box(
        index
            .search("google l4 tc", options)
            .expect("search succeeds"),
    )
}

fn bench_synthetic(criterion: &mut Criterion) {
    let passages = env_usize("GUIDEBOT_BENCH_PASSAGES", 100_000);
    let build_passages = env_usize("GUIDEBOT_BENCH_BUILD_PASSAGES", passages);
    let source = Corpus::load(&repo_path("corpus")).expect("bundled corpus loads");
    let questions = eval_questions();
    let temp = tempfile::tempdir().expect("temp dir");
    let corpus_dir = temp.path().join("corpus");
    let index_dir = temp.path().join("index");
    let summary = write_synthetic_corpus(&source, &corpus_dir, passages).expect("synthetic corpus");
    let corpus = Corpus::load(&corpus_dir).expect("synthetic corpus loads");
    let index = SearchIndex::build(&corpus, &index_dir).expect("synthetic index builds");
    eprintln!(
        "synthetic corpus: {} guides, {} passages, {} MB of Markdown in {}",
        summary.guides,
        index.passage_count(),
        summary.bytes / 1_000_000,
        corpus_dir.display()
    );

    let name = format!("synthetic_{}k", index.passage_count() / 1000);
    let mut group = criterion.benchmark_group(&name);
    group
        .measurement_time(Duration::from_secs(10))
        .sample_size(50);
    group.bench_function("query_eval_questions", |bencher| {
        query_round_robin(bencher, &index, &questions)
    });

    let options = SearchOptions::default();
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("open_index_first_query", |bencher| {
        // The corpus is already loaded (parsing 100k passages of Markdown is the corpus's cost, not
        // the index's); this is Tantivy's open plus the query planner's setup plus one query.
        bencher.iter(|| open_and_first_query(&corpus, &index_dir, &options))
    });
    group.bench_function("load_corpus", |bencher| {
        bencher.iter(|| black_box(Corpus::load(&corpus_dir).expect("corpus loads")))
    });
    drop(index);

    let build_corpus = if build_passages == passages {
        corpus
    } else {
        let build_dir = temp.path().join("build-corpus");
        write_synthetic_corpus(&source, &build_dir, build_passages).expect("synthetic corpus");
        Corpus::load(&build_dir).expect("synthetic corpus loads")
    };
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("build_index", |bencher| {
        bencher.iter_batched(
            || tempfile::tempdir_in(temp.path()).expect("temp dir"),
            // The index and its folder are returned, so dropping them (closing, deleting) is not timed.
            |dir| {
                let index = SearchIndex::build(&build_corpus, dir.path()).expect("index builds");
                (index, dir)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_guide, bench_open, bench_synthetic);
criterion_main!(benches);
