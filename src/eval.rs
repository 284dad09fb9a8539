//! The eval: question sets with the sections and facts that answer each question, run through the
//! engine like any client and through a plain-BM25 baseline, giving the metrics that gate CI.
//!
//! A set is a TOML file (`tests/eval/*.toml`); `dev` sets are tuned on, `heldout` sets never are (see
//! `tests/eval/README.md`). Every figure is printed for guidebot and for the baseline side by side, so
//! a change that only helps the tuned set, or loses to plain BM25, shows.

mod baseline;
mod source;

pub use baseline::Baseline;
pub use source::SourceTexts;

use crate::answer::Answer;
use crate::engine::Engine;
use crate::search::{SearchOptions, SearchResults};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One answerable question of the set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalQuestion {
    pub id: String,
    pub text: String,
    /// Slug of the guide that answers it; defaults to the set's `guide`, else any guide.
    #[serde(default)]
    pub guide: Option<String>,
    /// Section ids (in that guide) that answer it; a hit in any of them counts.
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

/// A conversation: earlier turns, then a follow-up whose answer is scored (expected sections and
/// facts are the last turn's).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConversation {
    pub id: String,
    /// Two or three messages, in order; the last is the follow-up measured.
    pub turns: Vec<String>,
    /// Section ids that answer the follow-up in its context.
    pub sections: Vec<String>,
    /// Strings the follow-up's answer needs.
    pub facts: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The whole set, as stored in `tests/eval/*.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    /// The guide every question is about unless it names its own.
    #[serde(default)]
    pub guide: Option<String>,
    #[serde(default, rename = "question")]
    pub questions: Vec<EvalQuestion>,
    #[serde(default, rename = "off_topic")]
    pub off_topic: Vec<OffTopicQuestion>,
    #[serde(default, rename = "conversation")]
    pub conversations: Vec<EvalConversation>,
}

/// Reading the set failed; names the file and, for syntax errors, the line.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read the eval set {path}")]
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
            line: crate::util::toml::error_line(text, &error, 1),
            message: error.message().to_string(),
        })
    }

    /// The guide `question` is about, if the set says.
    pub fn guide_of<'a>(&'a self, question: &'a EvalQuestion) -> Option<&'a str> {
        question.guide.as_deref().or(self.guide.as_deref())
    }
}

/// One passage a system ranked, as the eval needs it.
#[derive(Debug, Clone)]
pub struct RankedPassage {
    pub guide: String,
    pub section_id: String,
    /// Context and text, as a reader sees the passage.
    pub text: String,
}

/// What a system retrieved for one question.
#[derive(Debug, Clone, Default)]
pub struct Retrieved {
    pub relevant: bool,
    pub coverage: f32,
    /// What guidebot's relevance judgement read (the baseline has none).
    pub features: Option<crate::search::RelevanceFeatures>,
    pub passages: Vec<RankedPassage>,
}

impl Retrieved {
    /// The engine's search results as the eval reads them.
    pub fn from_results(results: &SearchResults) -> Retrieved {
        Retrieved {
            relevant: results.relevant,
            coverage: results.coverage,
            features: Some(results.features),
            passages: results
                .hits
                .iter()
                .map(|hit| RankedPassage {
                    guide: hit.guide.clone(),
                    section_id: hit.section_id.clone(),
                    text: match &hit.context {
                        Some(context) => format!("{context} {}", hit.text),
                        None => hit.text.clone(),
                    },
                })
                .collect(),
        }
    }
}

/// What a system answered for one question.
#[derive(Debug, Clone, Default)]
pub struct Produced {
    pub text: String,
    pub refused: bool,
    /// Each citation's guide and quote.
    pub quotes: Vec<(String, String)>,
    pub latency_ms: f64,
    pub fell_back: bool,
}

impl Produced {
    pub fn from_answer(answer: &Answer) -> Produced {
        Produced {
            text: answer.answer.clone(),
            refused: answer.refused,
            quotes: answer
                .citations
                .iter()
                .map(|citation| (citation.guide.clone(), citation.quote.clone()))
                .collect(),
            latency_ms: answer.latency_ms,
            fell_back: answer.fallback.is_some(),
        }
    }
}

/// What happened to one question, for the detailed report and for debugging misses.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionOutcome {
    pub id: String,
    pub text: String,
    pub relevant: bool,
    pub coverage: f32,
    pub features: Option<crate::search::RelevanceFeatures>,
    /// 1-based rank of the first hit in an expected section, if any in the top 10.
    pub first_correct_rank: Option<usize>,
    pub facts_in_top3: bool,
    /// The first hit is from the question's guide (true when the set names no guide).
    pub right_guide_first: bool,
    /// `guide#section` of the first three hits.
    pub top_sections: Vec<String>,
    /// Present when answers were measured: whether the answer carried every fact.
    pub facts_in_answer: Option<bool>,
    /// The answer's text, when answers were measured.
    pub answer: Option<String>,
}

/// The retrieval metrics, each in 0..=1.
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
    /// Share of answerable questions whose first hit is from the right guide.
    pub right_guide_first: f64,
}

/// Metrics of the answers (extractive unless an LLM is configured), each in 0..=1.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerMetrics {
    pub mode: String,
    /// Share of answerable questions whose answer text contains every needed fact.
    pub facts_in_answer: f64,
    /// Share of citations whose quote is verbatim in the guide's Markdown source, once inline
    /// markup is removed (must be 1.0).
    pub verbatim_quotes: f64,
    pub citations: usize,
    /// Share of off-topic questions the answer refused.
    pub off_topic_refusal: f64,
    /// Share of answerable questions the answer refused.
    pub answerable_refusal: f64,
    /// Answers that fell back from the LLM to the extractive text.
    pub fallbacks: usize,
    /// Of the fallbacks, those whose LLM answer had no sentence its citations supported.
    pub ungrounded: usize,
    /// LLM answers shown with sentences removed by the checks.
    pub trimmed: usize,
    pub p50_latency_ms: f64,
    pub max_latency_ms: f64,
}

/// One system's figures on one set.
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    pub retrieval: RetrievalMetrics,
    pub answers: Option<AnswerMetrics>,
    pub outcomes: Vec<QuestionOutcome>,
    pub off_topic_outcomes: Vec<QuestionOutcome>,
}

/// One set's figures for guidebot and for the baseline.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// The set's file, as given.
    pub set: String,
    pub guidebot: SystemReport,
    pub baseline: Option<SystemReport>,
    /// The set's conversations, when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversations: Option<ConversationReport>,
}

/// How follow-ups fare with their conversation's history, and the same follow-ups asked alone
/// (what guidebot did before it kept history), each in 0..=1.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationReport {
    pub conversations: usize,
    /// With history: the first hit is in an expected section.
    pub hit_at_1: f64,
    pub hit_at_3: f64,
    /// The top three passages hold every fact.
    pub fact_at_3: f64,
    /// The follow-up's answer holds every fact.
    pub facts_in_answer: f64,
    /// Follow-ups refused.
    pub refusal: f64,
    /// Citations of the follow-ups' answers whose quote is verbatim in the guide (must be 1.0).
    pub verbatim_quotes: f64,
    /// The same follow-ups without history.
    pub alone_hit_at_1: f64,
    pub alone_facts_in_answer: f64,
    pub outcomes: Vec<ConversationOutcome>,
}

/// One conversation's follow-up, for the detailed report.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationOutcome {
    pub id: String,
    pub follow_up: String,
    /// What retrieval searched (the follow-up and what it borrowed).
    pub standalone: String,
    pub first_correct_rank: Option<usize>,
    pub facts_in_answer: bool,
    pub alone_facts_in_answer: bool,
    pub refused: bool,
    pub answer: String,
}

/// Runs each conversation through the engine as the bot does: every earlier turn answered with
/// the history before it, then the follow-up searched and answered with the whole history, and
/// once more alone.
pub async fn run_conversations(
    engine: &Engine,
    set: &EvalSet,
    sources: &SourceTexts,
) -> Option<ConversationReport> {
    use crate::engine::{AnswerOptions, PriorTurn};
    if set.conversations.is_empty() {
        return None;
    }
    let options = SearchOptions { limit: 10 };
    let mut outcomes = Vec::with_capacity(set.conversations.len());
    let (mut hit1, mut hit3, mut fact3, mut facts, mut refused) = (0, 0, 0, 0, 0);
    let (mut alone_hit1, mut alone_facts) = (0, 0);
    let (mut citations, mut verbatim) = (0usize, 0usize);
    for conversation in &set.conversations {
        let Some((follow_up, earlier)) = conversation.turns.split_last() else {
            continue;
        };
        let mut history: Vec<PriorTurn> = Vec::new();
        for turn in earlier {
            let options = AnswerOptions {
                history: history.clone(),
                ..AnswerOptions::default()
            };
            let answer = engine
                .answer(turn, &options)
                .await
                .map(|answer| answer.answer)
                .unwrap_or_default();
            history.push(PriorTurn {
                question: turn.clone(),
                standalone: engine.standalone_query(turn, &history),
                answer,
            });
        }
        let guide = set.guide.as_deref();
        let rank_in = |results: &Result<SearchResults, crate::search::SearchError>| {
            results.as_ref().ok().and_then(|results| {
                results
                    .hits
                    .iter()
                    .take(10)
                    .position(|hit| {
                        guide.is_none_or(|guide| hit.guide == guide)
                            && conversation.sections.contains(&hit.section_id)
                    })
                    .map(|index| index + 1)
            })
        };
        let with_history = engine.search_in_conversation(follow_up, &history, &options);
        let rank = rank_in(&with_history);
        let top3 = with_history
            .as_ref()
            .map(|results| {
                results
                    .hits
                    .iter()
                    .take(3)
                    .map(|hit| match &hit.context {
                        Some(context) => format!("{context} {}", hit.text),
                        None => hit.text.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let alone_rank = rank_in(&engine.search(follow_up, &options));
        let answer = engine
            .answer(
                follow_up,
                &AnswerOptions {
                    history: history.clone(),
                    ..AnswerOptions::default()
                },
            )
            .await
            .ok();
        let alone = engine
            .answer(follow_up, &AnswerOptions::default())
            .await
            .ok();
        let produced = answer
            .as_ref()
            .map(Produced::from_answer)
            .unwrap_or_else(|| Produced {
                refused: true,
                ..Produced::default()
            });
        let alone_ok = alone.as_ref().is_some_and(|alone| {
            !alone.refused && contains_all(&alone.answer, &conversation.facts)
        });
        let answer_ok = !produced.refused && contains_all(&produced.text, &conversation.facts);
        for (guide, quote) in &produced.quotes {
            citations += 1;
            verbatim += usize::from(sources.is_verbatim(guide, quote));
        }
        hit1 += usize::from(rank == Some(1));
        hit3 += usize::from(rank.is_some_and(|rank| rank <= 3));
        fact3 += usize::from(contains_all(&top3, &conversation.facts));
        facts += usize::from(answer_ok);
        refused += usize::from(produced.refused);
        alone_hit1 += usize::from(alone_rank == Some(1));
        alone_facts += usize::from(alone_ok);
        outcomes.push(ConversationOutcome {
            id: conversation.id.clone(),
            follow_up: follow_up.clone(),
            standalone: engine.standalone_query(follow_up, &history),
            first_correct_rank: rank,
            facts_in_answer: answer_ok,
            alone_facts_in_answer: alone_ok,
            refused: produced.refused,
            answer: produced.text,
        });
    }
    let total = outcomes.len().max(1) as f64;
    let share = |count: usize| count as f64 / total;
    Some(ConversationReport {
        conversations: outcomes.len(),
        hit_at_1: share(hit1),
        hit_at_3: share(hit3),
        fact_at_3: share(fact3),
        facts_in_answer: share(facts),
        refusal: share(refused),
        verbatim_quotes: if citations == 0 {
            1.0
        } else {
            verbatim as f64 / citations as f64
        },
        alone_hit_at_1: share(alone_hit1),
        alone_facts_in_answer: share(alone_facts),
        outcomes,
    })
}

/// How a system answers, for [`evaluate`]: its mode's name, the answering function, and the
/// guides' sources its quotes are checked against.
pub struct Answering<'a> {
    pub mode: &'a str,
    pub produce: &'a mut dyn FnMut(&str) -> Produced,
    pub sources: &'a SourceTexts,
}

/// Runs every question of `set` through `retrieve` and, when `answers` is given, through it too.
pub fn evaluate(
    set: &EvalSet,
    retrieve: &mut dyn FnMut(&str) -> Retrieved,
    answers: Option<Answering<'_>>,
) -> SystemReport {
    let mut outcomes = Vec::with_capacity(set.questions.len());
    for question in &set.questions {
        let retrieved = retrieve(&question.text);
        let guide = set.guide_of(question);
        let is_expected = |passage: &RankedPassage| {
            guide.is_none_or(|guide| passage.guide == guide)
                && question.sections.contains(&passage.section_id)
        };
        let first_correct_rank = retrieved
            .passages
            .iter()
            .take(10)
            .position(is_expected)
            .map(|index| index + 1);
        let top3_text = retrieved
            .passages
            .iter()
            .take(3)
            .map(|passage| passage.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let right_guide_first = match (guide, retrieved.passages.first()) {
            (Some(guide), Some(first)) => first.guide == guide,
            (Some(_), None) => false,
            (None, _) => true,
        };
        outcomes.push(QuestionOutcome {
            id: question.id.clone(),
            text: question.text.clone(),
            relevant: retrieved.relevant,
            coverage: retrieved.coverage,
            features: retrieved.features,
            first_correct_rank,
            facts_in_top3: contains_all(&top3_text, &question.facts),
            right_guide_first,
            top_sections: top_sections(&retrieved),
            facts_in_answer: None,
            answer: None,
        });
    }
    let mut off_topic_outcomes = Vec::with_capacity(set.off_topic.len());
    for question in &set.off_topic {
        let retrieved = retrieve(&question.text);
        off_topic_outcomes.push(QuestionOutcome {
            id: question.id.clone(),
            text: question.text.clone(),
            relevant: retrieved.relevant,
            coverage: retrieved.coverage,
            features: retrieved.features,
            first_correct_rank: None,
            facts_in_top3: false,
            right_guide_first: false,
            top_sections: top_sections(&retrieved),
            facts_in_answer: None,
            answer: None,
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
        right_guide_first: share(&|outcome| outcome.right_guide_first),
    };
    let answers = answers.map(
        |Answering {
             mode,
             produce,
             sources,
         }| {
            let mut facts_ok = 0usize;
            let mut refused = 0usize;
            let mut citations = 0usize;
            let mut verbatim = 0usize;
            let mut fallbacks = 0usize;
            let mut latencies = Vec::with_capacity(set.questions.len());
            for (question, outcome) in set.questions.iter().zip(outcomes.iter_mut()) {
                let produced = produce(&question.text);
                latencies.push(produced.latency_ms);
                fallbacks += usize::from(produced.fell_back);
                refused += usize::from(produced.refused);
                let has_facts = !produced.refused && contains_all(&produced.text, &question.facts);
                facts_ok += usize::from(has_facts);
                for (guide, quote) in &produced.quotes {
                    citations += 1;
                    verbatim += usize::from(sources.is_verbatim(guide, quote));
                }
                outcome.facts_in_answer = Some(has_facts);
                outcome.answer = Some(produced.text);
            }
            let mut off_topic_refused = 0usize;
            for (question, outcome) in set.off_topic.iter().zip(off_topic_outcomes.iter_mut()) {
                let produced = produce(&question.text);
                off_topic_refused += usize::from(produced.refused);
                for (guide, quote) in &produced.quotes {
                    citations += 1;
                    verbatim += usize::from(sources.is_verbatim(guide, quote));
                }
                outcome.answer = Some(produced.text);
            }
            latencies.sort_by(f64::total_cmp);
            AnswerMetrics {
                mode: mode.to_string(),
                facts_in_answer: facts_ok as f64 / answerable,
                verbatim_quotes: if citations == 0 {
                    1.0
                } else {
                    verbatim as f64 / citations as f64
                },
                citations,
                off_topic_refusal: off_topic_refused as f64 / set.off_topic.len().max(1) as f64,
                answerable_refusal: refused as f64 / answerable,
                fallbacks,
                ungrounded: 0,
                trimmed: 0,
                p50_latency_ms: latencies.get(latencies.len() / 2).copied().unwrap_or(0.0),
                max_latency_ms: latencies.last().copied().unwrap_or(0.0),
            }
        },
    );
    SystemReport {
        retrieval,
        answers,
        outcomes,
        off_topic_outcomes,
    }
}

/// Runs `set` through the engine (search, and answers when asked) and, when given, the baseline.
pub async fn run_set(
    engine: &Engine,
    set: &EvalSet,
    set_name: &str,
    with_answers: bool,
    baseline: Option<&Baseline>,
) -> SetReport {
    let options = SearchOptions { limit: 10 };
    let sources = SourceTexts::of(engine.corpus());
    let mut retrieve = |text: &str| match engine.search(text, &options) {
        Ok(results) => Retrieved::from_results(&results),
        Err(_) => Retrieved::default(),
    };
    let guidebot = if with_answers {
        // Answers may come from an LLM (async): produce them first, then score them in order.
        let mut produced = Vec::with_capacity(set.questions.len() + set.off_topic.len());
        let (mut ungrounded, mut trimmed) = (0usize, 0usize);
        let texts = set
            .questions
            .iter()
            .map(|question| question.text.as_str())
            .chain(set.off_topic.iter().map(|question| question.text.as_str()));
        for text in texts {
            let answer = engine
                .answer(text, &crate::engine::AnswerOptions::default())
                .await;
            produced.push(match answer {
                Ok(answer) => {
                    ungrounded += usize::from(
                        answer.fallback == Some(crate::answer::FallbackReason::Ungrounded),
                    );
                    trimmed += usize::from(answer.trimmed_sentences > 0);
                    Produced::from_answer(&answer)
                }
                Err(_) => Produced {
                    refused: true,
                    ..Produced::default()
                },
            });
        }
        let mut answers = produced.into_iter();
        let mut produce = |_: &str| answers.next().unwrap_or_default();
        let mut report = evaluate(
            set,
            &mut retrieve,
            Some(Answering {
                mode: engine.answer_mode().as_str(),
                produce: &mut produce,
                sources: &sources,
            }),
        );
        if let Some(metrics) = report.answers.as_mut() {
            metrics.ungrounded = ungrounded;
            metrics.trimmed = trimmed;
        }
        report
    } else {
        evaluate(set, &mut retrieve, None)
    };
    let baseline = baseline.map(|baseline| {
        let mut retrieve = |text: &str| baseline.retrieve(text);
        if with_answers {
            let mut produce = |text: &str| baseline.answer(text);
            evaluate(
                set,
                &mut retrieve,
                Some(Answering {
                    mode: "baseline",
                    produce: &mut produce,
                    sources: &sources,
                }),
            )
        } else {
            evaluate(set, &mut retrieve, None)
        }
    });
    let conversations = run_conversations(engine, set, &sources).await;
    SetReport {
        set: set_name.to_string(),
        guidebot,
        baseline,
        conversations,
    }
}

/// Whether `text` contains every fact, case-insensitively, whitespace runs compared as one space.
fn contains_all(text: &str, facts: &[String]) -> bool {
    let text = crate::corpus::collapse_whitespace(&text.to_lowercase());
    facts
        .iter()
        .all(|fact| text.contains(&crate::corpus::collapse_whitespace(&fact.to_lowercase())))
}

fn top_sections(retrieved: &Retrieved) -> Vec<String> {
    retrieved
        .passages
        .iter()
        .take(3)
        .map(|passage| format!("{}#{}", passage.guide, passage.section_id))
        .collect()
}
