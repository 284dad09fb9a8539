//! Latency percentiles of search, the figures issue 2's performance targets are stated in (criterion
//! reports means). Runs every eval question many times against the bundled guide and a synthetic
//! corpus, and times building and opening the synthetic index.
//!
//! ```text
//! cargo run --release --example search_latency -- [--passages 100000] [--rounds 200]
//!     [--synthetic-rounds 20] [--work-dir DIR] [--skip-synthetic] [--skip-guide]
//!     [--reuse-synthetic-index] [--slowest N] [--question TEXT]...
//! ```
//!
//! `--slowest N` lists the N questions with the highest median latency on each index (what to look
//! at when a tail is long); `--reuse-synthetic-index` opens the synthetic index in the work dir when
//! it matches instead of rebuilding it (for iterating on query speed; the build time is then not
//! printed); `--question TEXT` (repeatable) times these questions instead of the eval set's.
//!
//! With `--work-dir DIR` the guide's index (`DIR/guide-index`) and the synthetic corpus and index
//! (`DIR/synthetic-corpus`, `DIR/synthetic-index`) are kept, so the release binary can be timed on
//! them afterwards (hyperfine, `/usr/bin/time -v`; see BENCHMARKS.md). The synthetic index is always
//! rebuilt, so the build time printed is a full build.

use anyhow::Context;
use guidebot::corpus::Corpus;
use guidebot::eval::EvalSet;
use guidebot::search::{OpenOutcome, SearchIndex, SearchOptions};
use guidebot::synthetic::write_synthetic_corpus;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Args {
    passages: usize,
    rounds: usize,
    synthetic_rounds: usize,
    work_dir: Option<PathBuf>,
    skip_synthetic: bool,
    skip_guide: bool,
    reuse_synthetic_index: bool,
    slowest: usize,
    /// Questions given with `--question` replace the eval set's.
    questions: Vec<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        passages: 100_000,
        rounds: 200,
        synthetic_rounds: 20,
        work_dir: None,
        skip_synthetic: false,
        skip_guide: false,
        reuse_synthetic_index: false,
        slowest: 0,
        questions: Vec::new(),
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || iter.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--passages" => args.passages = value()?.replace('_', "").parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--synthetic-rounds" => args.synthetic_rounds = value()?.parse()?,
            "--work-dir" => args.work_dir = Some(PathBuf::from(value()?)),
            "--skip-synthetic" => args.skip_synthetic = true,
            "--skip-guide" => args.skip_guide = true,
            "--reuse-synthetic-index" => args.reuse_synthetic_index = true,
            "--slowest" => args.slowest = value()?.parse()?,
            "--question" => args.questions.push(value()?),
            other => anyhow::bail!(
                "unknown argument {other}; see the doc comment of examples/search_latency.rs"
            ),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let temp = tempfile::tempdir()?;
    let work = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let set = EvalSet::load(&repo.join("tests/eval/dev.toml"))?;
    let mut questions: Vec<String> = set
        .questions
        .iter()
        .map(|question| question.text.clone())
        .chain(set.off_topic.iter().map(|question| question.text.clone()))
        .collect();
    if !args.questions.is_empty() {
        questions = args.questions.clone();
    }
    println!(
        "machine: {} cores available; {} eval questions ({} off-topic)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        questions.len(),
        set.off_topic.len()
    );

    // The bundled guide: in memory (as the criterion bench) and on disk (as the CLI and the bot).
    let corpus = Corpus::load(&repo.join("corpus"))?;
    if !args.skip_guide {
        measure_guide(&args, &corpus, repo, &work, &questions)?;
    }
    if args.skip_synthetic {
        return Ok(());
    }
    measure_synthetic(&args, &corpus, &work, &questions)
}

fn measure_guide(
    args: &Args,
    corpus: &Corpus,
    repo: &Path,
    work: &Path,
    questions: &[String],
) -> anyhow::Result<()> {
    let in_ram = SearchIndex::build_in_ram(corpus)?;
    report(
        "guide, in-RAM index",
        in_ram.passage_count(),
        &latencies(&in_ram, questions, args.rounds),
        args.slowest,
    );
    let guide_index_dir = work.join("guide-index");
    let (on_disk, _) = SearchIndex::open_or_build(corpus, &guide_index_dir)?;
    report(
        "guide, on-disk index",
        on_disk.passage_count(),
        &latencies(&on_disk, questions, args.rounds),
        args.slowest,
    );
    drop(on_disk);
    let open_times = open_and_first_query(&repo.join("corpus"), &guide_index_dir, 50, true)?;
    report_durations(
        "guide, load corpus + open index + first query (in process, 50 runs)",
        &open_times,
    );
    Ok(())
}

fn measure_synthetic(
    args: &Args,
    corpus: &Corpus,
    work: &Path,
    questions: &[String],
) -> anyhow::Result<()> {
    let corpus_dir = work.join("synthetic-corpus");
    let index_dir = work.join("synthetic-index");
    let started = Instant::now();
    let summary = write_synthetic_corpus(corpus, &corpus_dir, args.passages)?;
    println!(
        "\nsynthetic corpus: {} guides, {} passages, {:.1} MB of Markdown, written in {:.2} s ({})",
        summary.guides,
        summary.passages,
        summary.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        corpus_dir.display()
    );
    let started = Instant::now();
    let synthetic = Corpus::load(&corpus_dir)?;
    let load_time = started.elapsed();
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let index = if args.reuse_synthetic_index {
        let (index, outcome) = SearchIndex::open_or_build(&synthetic, &index_dir)?;
        println!(
            "synthetic: load corpus {:.2} s; index {outcome:?}",
            load_time.as_secs_f64()
        );
        index
    } else {
        let index = SearchIndex::build(&synthetic, &index_dir)?;
        let build_time = started.elapsed();
        let build_cpu = process_cpu_time().saturating_sub(cpu_before);
        println!(
            "synthetic: load corpus {:.2} s; build index {:.2} s wall, {:.2} s CPU (all threads); full build = load + index {:.2} s",
            load_time.as_secs_f64(),
            build_time.as_secs_f64(),
            build_cpu.as_secs_f64(),
            (load_time + build_time).as_secs_f64()
        );
        index
    };
    report(
        "synthetic, on-disk index",
        index.passage_count(),
        &latencies(&index, questions, args.synthetic_rounds),
        args.slowest,
    );
    drop(index);
    let open_times = open_and_first_query(&corpus_dir, &index_dir, 5, false)?;
    report_durations(
        "synthetic, open index + first query (corpus already loaded, in process, 5 runs)",
        &open_times,
    );
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        black_box(Corpus::load(&corpus_dir)?);
        times.push(started.elapsed());
    }
    report_durations("synthetic, load corpus only (3 runs)", &times);
    Ok(())
}

/// Every question `rounds` times (after one warm-up round), each query timed alone; the times of
/// each question are kept with it so the slowest questions can be named.
fn latencies<'q>(
    index: &SearchIndex,
    questions: &'q [String],
    rounds: usize,
) -> Vec<(&'q str, Vec<Duration>)> {
    let options = SearchOptions::default();
    for question in questions {
        black_box(index.search(question, &options).ok());
    }
    let mut times: Vec<(&str, Vec<Duration>)> = questions
        .iter()
        .map(|question| (question.as_str(), Vec::with_capacity(rounds)))
        .collect();
    for _ in 0..rounds {
        for (question, question_times) in times.iter_mut() {
            let started = Instant::now();
            black_box(index.search(black_box(question), &options).ok());
            question_times.push(started.elapsed());
        }
    }
    times
}

/// Loads the corpus (optionally), opens the index, answers one question; `runs` times.
fn open_and_first_query(
    corpus_dir: &Path,
    index_dir: &Path,
    runs: usize,
    load_corpus: bool,
) -> anyhow::Result<Vec<Duration>> {
    let loaded = if load_corpus {
        None
    } else {
        Some(Corpus::load(corpus_dir)?)
    };
    let options = SearchOptions::default();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let fresh;
        let corpus = match &loaded {
            Some(corpus) => corpus,
            None => {
                fresh = Corpus::load(corpus_dir)?;
                &fresh
            }
        };
        let (index, outcome) = SearchIndex::open_or_build(corpus, index_dir)?;
        anyhow::ensure!(
            outcome == OpenOutcome::Opened,
            "expected the index to open, got {outcome:?}"
        );
        black_box(index.search("google l4 tc", &options)?);
        times.push(started.elapsed());
    }
    Ok(times)
}

fn report(label: &str, passages: u64, per_question: &[(&str, Vec<Duration>)], slowest: usize) {
    let times: Vec<Duration> = per_question
        .iter()
        .flat_map(|(_, times)| times.iter().copied())
        .collect();
    report_durations(
        &format!("{label}: {passages} passages, {} queries", times.len()),
        &times,
    );
    if slowest == 0 {
        return;
    }
    let mut medians: Vec<(Duration, &str)> = per_question
        .iter()
        .map(|(question, times)| {
            let mut sorted = times.clone();
            sorted.sort();
            (
                sorted.get(sorted.len() / 2).copied().unwrap_or_default(),
                *question,
            )
        })
        .collect();
    medians.sort_by_key(|median| std::cmp::Reverse(median.0));
    println!("  slowest questions (median):");
    for (median, question) in medians.into_iter().take(slowest) {
        println!("    {:8.3} ms  {question}", median.as_secs_f64() * 1000.0);
    }
}

fn report_durations(label: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let at = |quantile: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        // Nearest rank: the smallest value with at least `quantile` of the samples at or below it.
        let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1].as_secs_f64() * 1000.0
    };
    let mean = if sorted.is_empty() {
        0.0
    } else {
        sorted.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / sorted.len() as f64
    };
    println!("{label}");
    println!(
        "  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  mean {:.3} ms",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
        mean
    );
}

/// User + system CPU time of this process so far (all threads), from /proc; zero where unavailable.
fn process_cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may contain spaces) start at the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; field 3 (state) is index 0 after the ")".
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&index| {
            fields
                .get(index)
                .and_then(|field| field.parse::<u64>().ok())
        })
        .sum();
    // Linux reports these in USER_HZ, which is 100 on every mainstream configuration.
    Duration::from_millis(ticks * 10)
}
