//! The command line: clap definitions and the commands' terminal and JSON output.
//!
//! Each command is a thin adapter: load the one configuration (defaults, `--config` file,
//! environment, flags), call the engine, print. Output goes to a writer so tests can capture it;
//! `--json` prints exactly one JSON object on stdout.

use crate::answer::Answer;
use crate::comp::{render_aligned_table, CompLookup, CompQuery};
use crate::config::{Config, ConfigError, Flag};
use crate::engine::{AnswerOptions, Engine, EngineConfig};
use crate::eval::{EvalSet, SetReport, SystemReport};
use crate::search::{OpenOutcome, SearchOptions, SearchResults, MAX_HITS};
use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// guidebot: answers questions about the Data Scientist / ML Engineer Hub's career guides, with citations.
#[derive(Debug, Parser)]
#[command(name = "guidebot", version, about, long_about = None)]
pub struct Cli {
    /// TOML config file (see deploy/guidebot.example.toml); also GUIDEBOT_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder holding the guides (*.md) and vocabulary.toml [default: corpus; GUIDEBOT_CORPUS_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Folder for the search index, built on demand, safe to delete [default: index;
    /// GUIDEBOT_INDEX_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    pub index: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build (or rebuild) the search index from the corpus.
    Index {
        /// Rebuild even when the index matches the corpus.
        #[arg(long)]
        force: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find the passages of the guides that answer a question.
    Search {
        /// The question or keywords, in quotes.
        text: String,
        /// Number of passages to show (1-25).
        #[arg(short = 'k', long = "limit", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=MAX_HITS as i64))]
        limit: u16,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Answer a question from the guides, with numbered citations.
    Ask {
        /// The question, in quotes.
        question: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Answer from the guide's own sentences even when an LLM is configured.
        #[arg(long)]
        extractive: bool,
    },
    /// Look up compensation bands from the guides' tables.
    Comp {
        /// Company names (several to compare), e.g. `google meta "scale ai"`.
        companies: Vec<String>,
        /// Only this level (E4, L4, MTS-3, mid...).
        #[arg(long)]
        level: Option<String>,
        /// Only this role (DS, MLE, MTS...).
        #[arg(long)]
        role: Option<String>,
        /// List every company the guides cover.
        #[arg(long)]
        list: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the bot: Discord gateway (when DISCORD_TOKEN is set) and/or the HTTP interactions endpoint.
    Serve {
        /// Run the signed HTTP interactions endpoint on ADDR, e.g. 0.0.0.0:8080 (needs DISCORD_PUBLIC_KEY).
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// Connect to Discord's gateway (the default whenever DISCORD_TOKEN is set).
        #[arg(long)]
        gateway: bool,
        /// Serve Prometheus /metrics on ADDR in gateway mode (the HTTP endpoint serves it already).
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// Usage report from the feedback and analytics database (PostgreSQL when bot.store_url is
    /// set, else the SQLite file).
    Report {
        /// An SQLite database to read, even when bot.store_url is set [default: bot.store_url's
        /// PostgreSQL, else bot.store_path, guidebot.sqlite].
        #[arg(long, value_name = "FILE")]
        store: Option<PathBuf>,
        /// Only the last DAYS days.
        #[arg(long, default_value_t = 7)]
        since: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Write the refused and not-helpful questions to FILE in the eval set's format, to label.
        #[arg(long, value_name = "FILE")]
        export_eval: Option<PathBuf>,
    },
    /// Run eval question sets and print their metrics beside a plain-BM25 baseline's.
    Eval {
        /// Question sets (TOML; repeat the flag for several), e.g. tests/eval/dev3.toml.
        #[arg(
            long = "questions",
            visible_alias = "set",
            default_value = "tests/eval/dev.toml"
        )]
        questions: Vec<PathBuf>,
        /// More folders of guides to index with --corpus, e.g. tests/corpora/ds-interviews-grigorev.
        #[arg(long = "with", value_name = "DIR")]
        with: Vec<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also list every question that missed.
        #[arg(long)]
        verbose: bool,
        /// Also answer every question (LLM when configured) and measure the answers.
        #[arg(long)]
        answers: bool,
        /// Skip the plain-BM25 baseline.
        #[arg(long)]
        no_baseline: bool,
    },
    /// Inspect the configuration (defaults, TOML file, environment).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage the database: move an SQLite file's data into the configured PostgreSQL.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

/// `guidebot store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Apply the migrations to the configured database (the bot also does at start-up).
    Migrate {
        /// Then copy this SQLite file's questions, feedback, usage and cached answers into the
        /// PostgreSQL database of bot.store_url / GUIDEBOT_STORE_URL.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// Copy even when the target already holds questions (they would be counted twice if
        /// this file was copied before).
        #[arg(long)]
        append: bool,
    },
}

/// `guidebot config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print every effective value (secrets masked) and where it
    /// came from; exits non-zero when anything is invalid.
    Check {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// Whether this command is a long-running server (which sets up its own logging).
    pub fn is_server(&self) -> bool {
        matches!(self.command, Command::Serve { .. })
    }

    /// The command-line values that override the configuration (the last layer).
    pub fn flags(&self) -> Vec<Flag> {
        let path = |key, flag, value: &Option<PathBuf>| {
            value.as_ref().map(|value| Flag {
                key,
                flag,
                value: value.display().to_string(),
            })
        };
        let addr = |key, flag, value: &Option<std::net::SocketAddr>| {
            value.map(|value| Flag {
                key,
                flag,
                value: value.to_string(),
            })
        };
        let mut flags = vec![
            path("paths.corpus_dir", "--corpus", &self.corpus),
            path("paths.index_dir", "--index", &self.index),
        ];
        match &self.command {
            Command::Serve {
                http, metrics_addr, ..
            } => {
                flags.push(addr("http.addr", "--http", http));
                flags.push(addr("metrics.addr", "--metrics-addr", metrics_addr));
            }
            Command::Report { store, .. } => flags.push(path("bot.store_path", "--store", store)),
            _ => {}
        }
        flags.into_iter().flatten().collect()
    }
}

/// Runs a parsed command, writing its output to `out`. `env` is the process environment (passed in
/// so tests can set variables without touching the real one). Every command loads the one
/// configuration first, so `--config`, `--corpus` and `--index` mean the same everywhere.
pub async fn run(
    cli: Cli,
    env: &HashMap<String, String>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let loaded = Config::load_with(cli.config.as_deref(), env, &cli.flags());
    if let Command::Config {
        command: ConfigCommand::Check { json },
    } = cli.command
    {
        return run_config_check(loaded, json, out);
    }
    let settings = loaded.context("invalid configuration")?;
    // The configured paths and limits (`paths.max_guide_bytes`) reach every command; an LLM only
    // the commands that answer with one.
    let mut config = EngineConfig {
        llm: None,
        ..EngineConfig::from(&settings)
    };
    match cli.command {
        Command::Config { .. } => Ok(()),
        Command::Ask {
            question,
            json,
            extractive,
        } => {
            if !extractive {
                config.llm = settings.llm_settings();
            }
            let engine = open_engine(&config)?;
            let answer = match engine.answer(&question, &AnswerOptions::default()).await {
                Ok(answer) => answer,
                Err(crate::search::SearchError::EmptyQuery) => {
                    // With --json the error is one JSON object too; either way the exit code is 1.
                    if json {
                        write_json(
                            out,
                            &json!({"question": question, "error": crate::search::SearchError::EmptyQuery.to_string()}),
                        )?;
                    }
                    anyhow::bail!("{}", crate::search::SearchError::EmptyQuery)
                }
                Err(error) => return Err(error.into()),
            };
            if json {
                write_json(out, &answer_json(&answer))
            } else {
                write_answer_text(out, &answer)
            }
        }
        Command::Serve { gateway, .. } => crate::serve::serve(settings, gateway).await,
        Command::Report {
            since,
            json,
            export_eval,
            ..
        } => {
            // `--store FILE` names an SQLite file explicitly: it wins over a configured URL.
            let explicit_file = matches!(
                settings.source("bot.store_path"),
                Some(crate::config::Source::Flag { .. })
            );
            let target = if explicit_file {
                settings.store_path().map(crate::store::StoreTarget::Sqlite)
            } else {
                settings.store_target()
            }
            .context(
                "storage is disabled (bot.store_path and bot.store_url are empty): set GUIDEBOT_STORE_URL, GUIDEBOT_STORE_PATH or --store",
            )?;
            run_report(&target, since, json, export_eval.as_deref(), out).await
        }
        Command::Store {
            command: StoreCommand::Migrate { from, append },
        } => {
            let target = settings.store_target().context(
                "storage is disabled: set GUIDEBOT_STORE_URL (PostgreSQL) or GUIDEBOT_STORE_PATH",
            )?;
            run_store_migrate(&target, from.as_deref(), append, out).await
        }
        Command::Comp {
            companies,
            level,
            role,
            list,
            json,
        } => {
            if companies.iter().any(|name| name.trim().is_empty()) {
                anyhow::bail!(
                    "a company name is empty: give one, e.g. `guidebot comp google`, or list them with `guidebot comp --list`"
                );
            }
            let engine = open_engine(&config)?;
            if list || companies.is_empty() {
                // `--list google` lists the companies whose name or alias matches.
                let names: Vec<String> = if companies.is_empty() {
                    engine.comp_data().companies()
                } else {
                    let mut matching: Vec<String> = Vec::new();
                    for name in &companies {
                        for choice in engine.comp_data().autocomplete(name) {
                            let company = engine
                                .comp_data()
                                .records()
                                .iter()
                                .find(|record| choice.value.starts_with(record.company.as_str()))
                                .map(|record| record.company.clone());
                            if let Some(company) = company {
                                if !matching.contains(&company) {
                                    matching.push(company);
                                }
                            }
                        }
                    }
                    matching
                };
                if json {
                    return write_json(out, &json!({ "companies": names }));
                }
                writeln!(out, "Companies in the guides' compensation data:")?;
                for name in names {
                    writeln!(out, "  {name}")?;
                }
                return Ok(());
            }
            let lookup = engine.comp(&CompQuery {
                companies,
                level,
                role,
            });
            if json {
                write_json(out, &lookup)
            } else {
                write_comp_text(out, &lookup)
            }
        }
        Command::Index { force, json } => run_index(&config, force, json, out),
        Command::Search { text, limit, json } => {
            let engine = open_engine(&config)?;
            let options = SearchOptions {
                limit: usize::from(limit),
            };
            match engine.search(&text, &options) {
                Ok(results) if json => write_json(out, &search_json(&results)),
                Ok(results) => write_search_text(out, &results),
                Err(crate::search::SearchError::EmptyQuery) if json => {
                    write_json(
                        out,
                        &json!({"query": text, "relevant": false, "hits": [], "error": crate::search::SearchError::EmptyQuery.to_string()}),
                    )?;
                    // The README promises exit code 1 for an empty query, with or without --json.
                    anyhow::bail!("{}", crate::search::SearchError::EmptyQuery)
                }
                Err(error) => Err(error.into()),
            }
        }
        Command::Eval {
            questions,
            with,
            json,
            verbose,
            answers,
            no_baseline,
        } => {
            if answers {
                config.llm = settings.llm_settings();
            }
            config.extra_corpus_dirs = with;
            let sets = questions
                .iter()
                .map(|path| EvalSet::load(path).map(|set| (path.display().to_string(), set)))
                .collect::<Result<Vec<_>, _>>()?;
            // Evals build their index in memory: nothing is written, and eval runs never race
            // over an index folder.
            let corpus = crate::corpus::Corpus::load_with(
                &config.corpus_dir,
                &config.extra_corpus_dirs,
                &config.limits,
            )
            .with_context(|| {
                format!(
                    "cannot load the guides from {}",
                    config.corpus_dir.display()
                )
            })?;
            let baseline = if no_baseline {
                None
            } else {
                Some(
                    crate::eval::Baseline::build(&corpus)
                        .context("cannot build the baseline index")?,
                )
            };
            let guides = corpus.guides.len();
            let passages = corpus.passages().count();
            let engine = Engine::in_memory(corpus, config.llm.clone())?;
            let mut reports = Vec::with_capacity(sets.len());
            for (name, set) in &sets {
                reports.push(
                    crate::eval::run_set(&engine, set, name, answers, baseline.as_ref()).await,
                );
            }
            let report = EvalReport {
                corpus: std::iter::once(&config.corpus_dir)
                    .chain(&config.extra_corpus_dirs)
                    .map(|dir| dir.display().to_string())
                    .collect(),
                guides,
                passages,
                sets: reports,
            };
            if json {
                write_json(out, &report)
            } else {
                write_eval_text(out, &report, verbose)
            }
        }
    }
}

/// What `guidebot eval` prints: the corpus it indexed and each set's figures.
#[derive(Debug, serde::Serialize)]
pub struct EvalReport {
    pub corpus: Vec<String>,
    pub guides: usize,
    pub passages: usize,
    pub sets: Vec<crate::eval::SetReport>,
}

/// `guidebot config check`: every problem at once on error (and a non-zero exit), else the
/// effective values with their sources. A missing corpus folder is a problem too; unknown
/// `GUIDEBOT_*` variables are warned about.
fn run_config_check(
    loaded: Result<Config, ConfigError>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let checked = loaded.and_then(|config| match config.check_paths() {
        problems if problems.is_empty() => Ok(config),
        problems => Err(ConfigError { problems }),
    });
    let config = match checked {
        Ok(config) => config,
        Err(error) => {
            if json {
                write_json(out, &json!({ "ok": false, "problems": error.problems }))?;
            }
            return Err(error.into());
        }
    };
    let report = config.report();
    let warnings: Vec<String> = config
        .unknown_vars
        .iter()
        .map(|var| {
            format!(
                "{var} is set but no setting reads it (a typo?); see deploy/guidebot.example.toml"
            )
        })
        .collect();
    if json {
        return write_json(
            out,
            &json!({
                "ok": true,
                "file": config.file,
                "warnings": warnings,
                "settings": report,
            }),
        );
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    match &config.file {
        Some(path) => writeln!(out, "Configuration OK (file {})", path.display())?,
        None => writeln!(
            out,
            "Configuration OK (no config file; defaults and environment)"
        )?,
    }
    let width = report.iter().map(|line| line.key.len()).max().unwrap_or(0);
    for line in &report {
        writeln!(
            out,
            "  {:<width$} = {:<24} ({}; {})",
            line.key,
            format!("{:?}", line.value),
            line.source,
            line.env
        )?;
    }
    Ok(())
}

fn open_engine(config: &EngineConfig) -> anyhow::Result<Engine> {
    let engine = Engine::open(config).with_context(|| {
        format!(
            "cannot load the guides from {} (index in {})",
            config.corpus_dir.display(),
            config.index_dir.display()
        )
    })?;
    if let OpenOutcome::Built { reason } = engine.open_outcome() {
        tracing::info!(%reason, "built the search index");
    }
    Ok(engine)
}

fn run_index(
    config: &EngineConfig,
    force: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // The configured size limit applies here as in every other command (`paths.max_guide_bytes`).
    let corpus = crate::corpus::Corpus::load_with(&config.corpus_dir, &[], &config.limits)
        .with_context(|| {
            format!(
                "cannot load the guides from {}",
                config.corpus_dir.display()
            )
        })?;
    for warning in &corpus.warnings {
        tracing::warn!("{warning}");
    }
    let (index, outcome) = if force {
        let index = crate::search::SearchIndex::build(&corpus, &config.index_dir)?;
        (
            index,
            OpenOutcome::Built {
                reason: "--force".to_string(),
            },
        )
    } else {
        crate::search::SearchIndex::open_or_build(&corpus, &config.index_dir)?
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let generation = index
        .location()
        .map(|location| location.generation.display().to_string())
        .unwrap_or_default();
    if json {
        return write_json(
            out,
            &json!({
                "guides": corpus.guides.len(),
                "passages": index.passage_count(),
                "fingerprint": index.fingerprint(),
                "outcome": outcome,
                "path": generation,
                "elapsed_ms": elapsed_ms,
            }),
        );
    }
    let what = match &outcome {
        OpenOutcome::Opened => "Index is up to date".to_string(),
        OpenOutcome::Built { reason } => format!("Built the index ({reason})"),
    };
    writeln!(
        out,
        "{what}: {} guide(s), {} passages, fingerprint {}, in {elapsed_ms:.0} ms\n  {generation}",
        corpus.guides.len(),
        index.passage_count(),
        &index.fingerprint()[..12.min(index.fingerprint().len())],
    )?;
    Ok(())
}

/// The documented JSON shape of `search --json`.
pub fn search_json(results: &SearchResults) -> serde_json::Value {
    json!({
        "query": results.query,
        "relevant": results.relevant,
        "coverage": results.coverage,
        "corrections": results.corrections.iter().map(|(from, to)| json!({"from": from, "to": to})).collect::<Vec<_>>(),
        "notice": results.notice,
        "hits": results.hits.iter().map(|hit| json!({
            "rank": hit.rank,
            "score": hit.score,
            "guide": hit.guide,
            "section_id": hit.section_id,
            "heading": hit.heading,
            "heading_path": hit.heading_path,
            "text": hit.text,
            "snippet": hit.snippet,
        })).collect::<Vec<_>>(),
    })
}

/// `guidebot store migrate [--from FILE]`: migrations, then an SQLite file's rows copied in.
async fn run_store_migrate(
    target: &crate::store::StoreTarget,
    from: Option<&std::path::Path>,
    append: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    use crate::store::{Backend, SqliteStore, Store};
    let store = target.open()?;
    let applied = store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate {}", target.describe()))?;
    writeln!(out, "{}: {applied} migration(s) applied", target.describe())?;
    let Some(from) = from else {
        return Ok(());
    };
    if target.backend() != Backend::Postgres {
        anyhow::bail!(
            "--from copies into PostgreSQL: set bot.store_url or GUIDEBOT_STORE_URL to the target database"
        );
    }
    if !from.is_file() {
        anyhow::bail!("no SQLite database at {}", from.display());
    }
    let source = SqliteStore::open(from)?;
    let dump = source
        .dump()
        .await
        .with_context(|| format!("cannot read {}", from.display()))?;
    if !append {
        let existing = store
            .report(u32::MAX / 86_400, crate::util::clock::now_unix())
            .await?;
        if existing.questions > 0 {
            anyhow::bail!(
                "{} already holds {} question(s): pass --append to copy anyway (a file copied twice counts twice)",
                target.describe(),
                existing.questions
            );
        }
    }
    store.import(&dump).await.context("cannot copy the rows")?;
    writeln!(
        out,
        "Copied {} question(s), {} vote(s), {} hand-off(s), {} usage row(s) and {} cached answer(s) from {}",
        dump.questions.len(),
        dump.feedback.len(),
        dump.escalations.len(),
        dump.usage.len(),
        dump.cache.len(),
        from.display()
    )?;
    Ok(())
}

async fn run_report(
    target: &crate::store::StoreTarget,
    since: u32,
    json: bool,
    export_eval: Option<&std::path::Path>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    use crate::store::StoreTarget;
    use crate::util::clock::now_unix;
    if let StoreTarget::Sqlite(store_path) = target {
        if !store_path.exists() {
            anyhow::bail!(
                "no database at {}: the bot creates it when it serves (set bot.store_path, GUIDEBOT_STORE_PATH or --store)",
                store_path.display()
            );
        }
    }
    let store = target.open()?;
    let report = store
        .report(since, now_unix())
        .await
        .with_context(|| format!("cannot read {}", target.describe()))?;
    if let Some(path) = export_eval {
        std::fs::write(path, export_eval_toml(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let attention: Vec<(String, u64)> = report
        .needs_attention
        .iter()
        .map(|item| (item.question.clone(), item.count))
        .collect();
    let gaps = crate::search::clusters::cluster_questions(&attention, 3);
    if json {
        /// The store's report with the coverage gaps beside it.
        #[derive(serde::Serialize)]
        struct WithGaps<'a> {
            #[serde(flatten)]
            report: &'a crate::store::Report,
            coverage_gaps: &'a [crate::search::clusters::QuestionCluster],
        }
        return write_json(
            out,
            &WithGaps {
                report: &report,
                coverage_gaps: &gaps,
            },
        );
    }
    writeln!(
        out,
        "Last {} day(s): {} question(s), refusal rate {:.1}%",
        report.since_days,
        report.questions,
        report.refusal_rate * 100.0
    )?;
    for (day, count) in &report.questions_per_day {
        writeln!(out, "  {day}  {count}")?;
    }
    match report.feedback_ratio {
        Some(ratio) => writeln!(
            out,
            "Feedback: {} helpful, {} not helpful ({:.0}% helpful)",
            report.feedback_helpful,
            report.feedback_not_helpful,
            ratio * 100.0
        )?,
        None => writeln!(out, "Feedback: none yet")?,
    }
    if !report.most_asked.is_empty() {
        writeln!(out, "Most asked:")?;
        for (question, count) in &report.most_asked {
            writeln!(out, "  {count:>4}  {question}")?;
        }
    }
    if !report.needs_attention.is_empty() {
        writeln!(
            out,
            "Refused or not helpful (candidates for eval cases and guide sections):"
        )?;
        for item in &report.needs_attention {
            writeln!(
                out,
                "  {:>4}  [{}] {}",
                item.count, item.reason, item.question
            )?;
        }
    }
    if !gaps.is_empty() {
        writeln!(
            out,
            "Coverage gaps (refused or not helpful questions grouped by shared words):"
        )?;
        for gap in &gaps {
            writeln!(
                out,
                "  {:>4}  {} ({} question(s)): {}",
                gap.count,
                gap.terms.join(" "),
                gap.questions,
                gap.examples.join(" | ")
            )?;
        }
    }
    if let Some(path) = export_eval {
        writeln!(
            out,
            "Wrote {} question(s) to label to {}",
            report.needs_attention.len(),
            path.display()
        )?;
    }
    Ok(())
}

/// The refused and not-helpful questions as eval cases for a maintainer to label.
pub fn export_eval_toml(report: &crate::store::Report) -> String {
    let mut text = String::from(
        "# Questions from production that guidebot refused or that readers marked not helpful.\n\
         # Label each: fill `sections` and `facts` (see tests/eval/dev.toml), or move it to\n\
         # [[off_topic]] if the guides should not answer it; then add it to the eval set.\n",
    );
    for (index, item) in report.needs_attention.iter().enumerate() {
        let question = toml::Value::String(item.question.clone()).to_string();
        let reason = toml::Value::String(item.reason.clone()).to_string();
        text.push_str(&format!(
            "\n[[question]]\nid = \"production-{}\"\ntext = {question}\nsections = []\nfacts = []\ntags = [\"from-production\", {reason}]\n",
            index + 1
        ));
    }
    text
}

/// The documented JSON shape of `ask --json`.
pub fn answer_json(answer: &Answer) -> serde_json::Value {
    json!({
        "question": answer.question,
        "answer": answer.answer,
        "citations": answer.citations.iter().map(|citation| json!({
            "n": citation.n,
            "guide": citation.guide,
            "section_id": citation.section_id,
            "heading": citation.heading,
            "quote": citation.quote,
        })).collect::<Vec<_>>(),
        "refused": answer.refused,
        "mode": answer.mode,
        "latency_ms": answer.latency_ms,
        "note": answer.note,
        "closest_sections": answer.closest_sections,
    })
}

fn write_answer_text(out: &mut dyn Write, answer: &Answer) -> anyhow::Result<()> {
    writeln!(out, "{}", answer.answer)?;
    if let Some(note) = &answer.note {
        writeln!(out, "\n({note})")?;
    }
    if !answer.citations.is_empty() {
        writeln!(out, "\nSources:")?;
        for citation in &answer.citations {
            writeln!(
                out,
                "  [{}] {} — {}",
                citation.n, citation.heading, citation.guide_title
            )?;
            writeln!(out, "      \"{}\"", citation.quote.replace('\n', " / "))?;
        }
    }
    writeln!(
        out,
        "\n({} answer, {:.1} ms)",
        answer.mode.as_str(),
        answer.latency_ms
    )?;
    Ok(())
}

fn write_comp_text(out: &mut dyn Write, lookup: &CompLookup) -> anyhow::Result<()> {
    if !lookup.rows.is_empty() {
        writeln!(out, "{}", render_aligned_table(&lookup.rows))?;
    }
    for name in &lookup.not_found {
        writeln!(out, "The guides have no compensation data for \"{name}\".")?;
    }
    for name in &lookup.filtered_out {
        writeln!(out, "No row for \"{name}\" matches that level or role.")?;
    }
    if !lookup.suggestions.is_empty() {
        writeln!(out, "Did you mean: {}?", lookup.suggestions.join(", "))?;
    }
    Ok(())
}

fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

fn write_search_text(out: &mut dyn Write, results: &SearchResults) -> anyhow::Result<()> {
    for (from, to) in &results.corrections {
        writeln!(out, "(read \"{from}\" as \"{to}\")")?;
    }
    if let Some(notice) = &results.notice {
        writeln!(out, "{notice}")?;
    }
    if !results.relevant {
        writeln!(out, "Nothing in the guides answers this.")?;
        if !results.hits.is_empty() {
            writeln!(out, "Closest sections:")?;
            let mut seen = Vec::new();
            for hit in &results.hits {
                if !seen.contains(&&hit.section_id) {
                    seen.push(&hit.section_id);
                    writeln!(out, "  - {} ({})", hit.heading, hit.section_id)?;
                }
            }
        }
        return Ok(());
    }
    for hit in &results.hits {
        writeln!(out, "{}. {}  [{:.2}]", hit.rank, hit.heading, hit.score)?;
        writeln!(out, "   {}", hit.heading_path.join(" › "))?;
        for line in hit.snippet.lines() {
            writeln!(out, "   {line}")?;
        }
        writeln!(out, "   → {}#{}", hit.guide, hit.section_id)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The follow-ups' figures, with history and asked alone.
fn write_conversations_text(
    out: &mut dyn Write,
    set: &str,
    report: &crate::eval::ConversationReport,
    verbose: bool,
) -> anyhow::Result<()> {
    writeln!(out, "\n{set}: {} conversations", report.conversations)?;
    writeln!(out, "  {:<28} {:>9} {:>9}", "", "history", "alone")?;
    let rows: [(&str, &[f64]); 6] = [
        ("follow-up hit@1", &[report.hit_at_1, report.alone_hit_at_1]),
        ("follow-up hit@3", &[report.hit_at_3]),
        ("follow-up fact@3", &[report.fact_at_3]),
        (
            "facts in answer",
            &[report.facts_in_answer, report.alone_facts_in_answer],
        ),
        ("refused", &[report.refusal]),
        ("verbatim quotes", &[report.verbatim_quotes]),
    ];
    for (label, values) in rows {
        let values: String = values
            .iter()
            .map(|value| format!(" {value:>9.3}"))
            .collect();
        writeln!(out, "  {label:<28}{values}")?;
    }
    if verbose {
        for outcome in &report.outcomes {
            if outcome.first_correct_rank != Some(1) || !outcome.facts_in_answer {
                writeln!(
                    out,
                    "  MISS {:<28} rank={:?} answer_facts={} refused={}\n       Q: {}\n       searched: {}\n       A: {}",
                    outcome.id,
                    outcome.first_correct_rank,
                    outcome.facts_in_answer,
                    outcome.refused,
                    outcome.follow_up,
                    outcome.standalone,
                    outcome.answer
                )?;
            }
        }
    }
    Ok(())
}

fn write_eval_text(out: &mut dyn Write, report: &EvalReport, verbose: bool) -> anyhow::Result<()> {
    writeln!(
        out,
        "Corpus: {} ({} guides, {} passages)",
        report.corpus.join(" + "),
        report.guides,
        report.passages
    )?;
    for set in &report.sets {
        write_set_text(out, set, verbose)?;
    }
    Ok(())
}

fn write_set_text(out: &mut dyn Write, set: &SetReport, verbose: bool) -> anyhow::Result<()> {
    if let Some(conversations) = &set.conversations {
        write_conversations_text(out, &set.set, conversations, verbose)?;
        if set.guidebot.retrieval.questions == 0 && set.guidebot.retrieval.off_topic_questions == 0
        {
            return Ok(());
        }
    }
    let ours = &set.guidebot;
    let theirs = set.baseline.as_ref();
    writeln!(
        out,
        "\n{}: {} questions, {} off-topic",
        set.set, ours.retrieval.questions, ours.retrieval.off_topic_questions
    )?;
    writeln!(
        out,
        "  {:<28} {:>9} {:>9}",
        "",
        "guidebot",
        if theirs.is_some() { "baseline" } else { "" }
    )?;
    let row = |out: &mut dyn Write,
               name: &str,
               value: &dyn Fn(&SystemReport) -> Option<f64>|
     -> anyhow::Result<()> {
        let Some(ours_value) = value(ours) else {
            return Ok(());
        };
        let baseline = theirs
            .and_then(value)
            .map(|figure| format!("{figure:>9.3}"))
            .unwrap_or_default();
        writeln!(out, "  {name:<28} {ours_value:>9.3} {baseline}")?;
        Ok(())
    };
    row(out, "hit@1", &|r| Some(r.retrieval.hit_at_1))?;
    row(out, "hit@3", &|r| Some(r.retrieval.hit_at_3))?;
    row(out, "MRR", &|r| Some(r.retrieval.mrr))?;
    row(out, "fact@3", &|r| Some(r.retrieval.fact_at_3))?;
    row(out, "off-topic rejection", &|r| {
        Some(r.retrieval.off_topic_rejection)
    })?;
    row(out, "answerable false-rejection", &|r| {
        Some(r.retrieval.answerable_false_rejection)
    })?;
    row(out, "right guide first", &|r| {
        Some(r.retrieval.right_guide_first)
    })?;
    row(out, "facts in answer", &|r| {
        r.answers.as_ref().map(|a| a.facts_in_answer)
    })?;
    row(out, "verbatim quotes", &|r| {
        r.answers.as_ref().map(|a| a.verbatim_quotes)
    })?;
    row(out, "off-topic refusal (answer)", &|r| {
        r.answers.as_ref().map(|a| a.off_topic_refusal)
    })?;
    row(out, "answerable refusal (answer)", &|r| {
        r.answers.as_ref().map(|a| a.answerable_refusal)
    })?;
    if let Some(answers) = &ours.answers {
        writeln!(
            out,
            "  answers: {} mode, {} citations, {} LLM fallbacks ({} unsupported by their citations), {} LLM answers trimmed, latency p50 / max {:.2} / {:.2} ms",
            answers.mode, answers.citations, answers.fallbacks, answers.ungrounded, answers.trimmed, answers.p50_latency_ms, answers.max_latency_ms
        )?;
    }
    if verbose {
        for outcome in &ours.outcomes {
            let missed = outcome.first_correct_rank != Some(1)
                || !outcome.relevant
                || !outcome.facts_in_top3
                || outcome.facts_in_answer == Some(false);
            if missed {
                writeln!(
                    out,
                    "  MISS {:<28} rank={:?} relevant={} cov={:.2} facts@3={} answer_facts={:?} top={:?}\n       Q: {}",
                    outcome.id,
                    outcome.first_correct_rank,
                    outcome.relevant,
                    outcome.coverage,
                    outcome.facts_in_top3,
                    outcome.facts_in_answer,
                    outcome.top_sections,
                    outcome.text
                )?;
                if let Some(answer) = &outcome.answer {
                    writeln!(out, "       A: {answer}")?;
                }
            }
        }
        for outcome in &ours.off_topic_outcomes {
            if outcome.relevant {
                writeln!(
                    out,
                    "  ACCEPTED OFF-TOPIC {:<20} cov={:.2} top={:?}\n       Q: {}",
                    outcome.id, outcome.coverage, outcome.top_sections, outcome.text
                )?;
                if let Some(answer) = &outcome.answer {
                    writeln!(out, "       A: {answer}")?;
                }
            }
        }
    }
    Ok(())
}
