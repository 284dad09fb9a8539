//! Latency percentiles of an extractive answer (search plus sentence selection and quote checks),
//! in process, over the eval question sets: the figures issue 12's speed targets are stated in.
//!
//! ```text
//! cargo run --release --example answer_latency -- [--with DIR]... [--questions FILE]... [--rounds 50]
//!     [--search-only]
//! ```
//!
//! Defaults: the bundled guide alone, every `tests/eval/*.toml` set whose guides are loaded
//! (`dev.toml` and `dev3.toml` for the bundled guide), 50 rounds. Each round asks every
//! question once, in file order; the figures are per question.

use anyhow::Context;
use guidebot::corpus::Corpus;
use guidebot::engine::Engine;
use guidebot::eval::EvalSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut with: Vec<PathBuf> = Vec::new();
    let mut sets: Vec<PathBuf> = Vec::new();
    let mut rounds = 50usize;
    let mut search_only = false;
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--with" => with.push(PathBuf::from(value()?)),
            "--questions" => sets.push(PathBuf::from(value()?)),
            "--rounds" => rounds = value()?.parse()?,
            "--search-only" => search_only = true,
            other => anyhow::bail!("unknown argument {other}; see examples/answer_latency.rs"),
        }
    }
    if sets.is_empty() {
        sets = vec![
            repo.join("tests/eval/dev.toml"),
            repo.join("tests/eval/dev3.toml"),
        ];
    }
    let corpus = Corpus::load_dirs(&repo.join("corpus"), &with)?;
    let passages = corpus.passages().count();
    let guides = corpus.guides.len();
    let engine = Engine::in_memory(corpus, None)?;
    let mut questions = Vec::new();
    for path in &sets {
        let set = EvalSet::load(path)?;
        questions.extend(set.questions.iter().map(|question| question.text.clone()));
        questions.extend(set.off_topic.iter().map(|question| question.text.clone()));
    }
    // Warm-up: caches (document frequencies, thread-local analyzers) as a running bot has them.
    let options = guidebot::search::SearchOptions {
        limit: guidebot::answer::ANSWER_PASSAGES,
    };
    let run = |question: &str| -> anyhow::Result<()> {
        if search_only {
            black_box(engine.index().search_passages(question, &options)?);
        } else {
            black_box(engine.answer_extractive(question)?);
        }
        Ok(())
    };
    for question in &questions {
        run(question)?;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(questions.len() * rounds);
    for _ in 0..rounds {
        for question in &questions {
            let started = Instant::now();
            run(black_box(question))?;
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    let at = |share: f64| samples[((samples.len() as f64 * share) as usize).min(samples.len() - 1)];
    println!(
        "{guides} guides, {passages} passages, {} questions x {rounds} rounds = {} answers",
        questions.len(),
        samples.len()
    );
    println!(
        "{}: p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        if search_only {
            "search"
        } else {
            "extractive answer"
        },
        at(0.50).as_secs_f64() * 1e6,
        at(0.90).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        samples[samples.len() - 1].as_secs_f64() * 1e6
    );
    Ok(())
}
