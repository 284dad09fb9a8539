//! The eval: a question set with the sections and facts that answer each question, run through the
//! engine like any client, giving the retrieval (and answer) metrics that gate CI.

use crate::engine::Engine;
use crate::search::SearchOptions;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One answerable question of the set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalQuestion {
    pub id: String,
    pub text: String,
    /// Section ids that answer it; a hit in any of them counts.
    pub sections: Vec<String>,
    /// Strings the answer needs, each verbatim in some passage of those sections.
    pub facts: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A question the guides do not answer: search must say "nothing relevant".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OffTopicQuestion {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The whole set, as stored in `tests/eval/questions.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    #[serde(default, rename = "question")]
    pub questions: Vec<EvalQuestion>,
    #[serde(default, rename = "off_topic")]
    pub off_topic: Vec<OffTopicQuestion>,
}

/// Reading the set failed; names the file and, for syntax errors, the line.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read the eval set {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: String,
        line: usize,
        message: String,
    },
}

impl EvalSet {
    /// Loads a set from TOML.
    pub fn load(path: &Path) -> Result<EvalSet, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
            path: path.display().to_string(),
            source,
        })?;
        EvalSet::parse(&path.display().to_string(), &text)
    }

    /// Parses a set; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<EvalSet, EvalError> {
        toml::from_str(text).map_err(|error| EvalError::Invalid {
            path: origin.to_string(),
            line: error
                .span()
                .map(|span| 1 + text[..span.start].matches('\n').count())
                .unwrap_or(1),
            message: error.message().to_string(),
        })
    }
}

/// What happened to one question, for the detailed report and for debugging misses.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionOutcome {
    pub id: String,
    pub text: String,
    pub relevant: bool,
    pub coverage: f32,
    pub matched_weight: f32,
    /// 1-based rank of the first hit in an expected section, if any in the top 10.
    pub first_correct_rank: Option<usize>,
    pub facts_in_top3: bool,
    pub top_sections: Vec<String>,
}

/// The metrics, each in 0..=1.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievalMetrics {
    pub questions: usize,
    pub off_topic_questions: usize,
    pub hit_at_1: f64,
    pub hit_at_3: f64,
    pub mrr: f64,
    pub fact_at_3: f64,
    /// Share of off-topic questions answered "nothing relevant".
    pub off_topic_rejection: f64,
    /// Share of answerable questions wrongly answered "nothing relevant".
    pub answerable_false_rejection: f64,
}

/// The full report: metrics plus per-question outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub retrieval: RetrievalMetrics,
    pub outcomes: Vec<QuestionOutcome>,
    pub off_topic_outcomes: Vec<QuestionOutcome>,
}

/// Runs every question of `set` through `engine.search`.
pub fn run_retrieval_eval(engine: &Engine, set: &EvalSet) -> EvalReport {
    let options = SearchOptions { limit: 10 };
    let mut outcomes = Vec::with_capacity(set.questions.len());
    for question in &set.questions {
        let outcome = match engine.search(&question.text, &options) {
            Ok(results) => {
                let top_sections: Vec<String> = results
                    .hits
                    .iter()
                    .map(|hit| hit.section_id.clone())
                    .collect();
                let first_correct_rank = top_sections
                    .iter()
                    .position(|section| question.sections.contains(section))
                    .map(|index| index + 1);
                let top3_text: String = results
                    .hits
                    .iter()
                    .take(3)
                    .map(|hit| format!("{} {}", hit.context.as_deref().unwrap_or(""), hit.text))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .to_lowercase();
                let facts_in_top3 = question
                    .facts
                    .iter()
                    .all(|fact| top3_text.contains(&fact.to_lowercase()));
                QuestionOutcome {
                    id: question.id.clone(),
                    text: question.text.clone(),
                    relevant: results.relevant,
                    coverage: results.coverage,
                    matched_weight: results.matched_weight,
                    first_correct_rank,
                    facts_in_top3,
                    top_sections: top_sections.into_iter().take(3).collect(),
                }
            }
            Err(_) => QuestionOutcome {
                id: question.id.clone(),
                text: question.text.clone(),
                relevant: false,
                coverage: 0.0,
                matched_weight: 0.0,
                first_correct_rank: None,
                facts_in_top3: false,
                top_sections: Vec::new(),
            },
        };
        outcomes.push(outcome);
    }
    let mut off_topic_outcomes = Vec::with_capacity(set.off_topic.len());
    for question in &set.off_topic {
        let (relevant, coverage, matched_weight, top_sections) =
            match engine.search(&question.text, &options) {
                Ok(results) => (
                    results.relevant,
                    results.coverage,
                    results.matched_weight,
                    results
                        .hits
                        .iter()
                        .take(3)
                        .map(|hit| hit.section_id.clone())
                        .collect(),
                ),
                Err(_) => (false, 0.0, 0.0, Vec::new()),
            };
        off_topic_outcomes.push(QuestionOutcome {
            id: question.id.clone(),
            text: question.text.clone(),
            relevant,
            coverage,
            matched_weight,
            first_correct_rank: None,
            facts_in_top3: false,
            top_sections,
        });
    }
    let answerable = outcomes.len().max(1) as f64;
    let share = |predicate: &dyn Fn(&QuestionOutcome) -> bool| {
        outcomes.iter().filter(|outcome| predicate(outcome)).count() as f64 / answerable
    };
    let retrieval = RetrievalMetrics {
        questions: outcomes.len(),
        off_topic_questions: off_topic_outcomes.len(),
        hit_at_1: share(&|outcome| outcome.first_correct_rank == Some(1)),
        hit_at_3: share(&|outcome| outcome.first_correct_rank.is_some_and(|rank| rank <= 3)),
        mrr: outcomes
            .iter()
            .map(|outcome| {
                outcome
                    .first_correct_rank
                    .map_or(0.0, |rank| 1.0 / rank as f64)
            })
            .sum::<f64>()
            / answerable,
        fact_at_3: share(&|outcome| outcome.facts_in_top3),
        off_topic_rejection: off_topic_outcomes
            .iter()
            .filter(|outcome| !outcome.relevant)
            .count() as f64
            / off_topic_outcomes.len().max(1) as f64,
        answerable_false_rejection: share(&|outcome| !outcome.relevant),
    };
    EvalReport {
        retrieval,
        outcomes,
        off_topic_outcomes,
    }
}
