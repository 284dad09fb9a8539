//! Answers with citations: extractive by default, written by an LLM when one is configured, and in
//! both cases checked against the guide before anything is shown.
//!
//! Invariants: every citation's quote appears verbatim in the corpus; an answer that cannot be
//! grounded falls back to the extractive one; nothing relevant means a refusal, never a guess.

mod extractive;
mod figures;
mod grounding;
mod prompt;

pub use extractive::extractive_answer;
pub use grounding::ground_completion;
pub use prompt::{
    estimated_tokens, sent_passages, system_prompt, whole_corpus_passages, Block, SentPassage,
};

use crate::llm::TokenUsage;
use serde::{Deserialize, Serialize};

/// Who wrote the answer's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerMode {
    /// Sentences taken from the guide, no LLM involved.
    Extractive,
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
}

impl AnswerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerMode::Extractive => "extractive",
            AnswerMode::Anthropic => "anthropic",
            AnswerMode::OpenAi => "openai",
        }
    }
}

/// One numbered source of an answer: where it is and the exact words relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// The number used in the answer's `[n]` markers, from 1.
    pub n: usize,
    pub guide: String,
    pub guide_title: String,
    pub section_id: String,
    pub heading: String,
    /// Verbatim from the guide (checked before the answer is returned).
    pub quote: String,
    pub passage_id: String,
}

/// A section named when the guide does not answer: where a reader might look instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionRef {
    pub guide: String,
    pub section_id: String,
    pub heading: String,
}

/// The answer to one question, whatever wrote it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub question: String,
    /// Text with `[n]` markers matching `citations`.
    pub answer: String,
    pub citations: Vec<Citation>,
    /// True when the guides do not cover the question.
    pub refused: bool,
    pub mode: AnswerMode,
    /// Sections closest to a refused question.
    pub closest_sections: Vec<SectionRef>,
    /// A short remark for the reader, e.g. why the LLM answer was replaced by the extractive one.
    pub note: Option<String>,
    pub latency_ms: f64,
    /// Tokens spent when an LLM wrote the answer.
    #[serde(skip)]
    pub usage: Option<TokenUsage>,
    /// Relevance of the best passage (see `SearchResults::coverage`).
    pub coverage: f32,
    /// Set when the LLM failed or its answer was not grounded, so metrics can count fallbacks.
    #[serde(skip)]
    pub fallback: Option<FallbackReason>,
    /// Sentences of an LLM's answer removed because no checked citation supported their figures
    /// (the note says so); 0 for extractive answers. Counted by the eval.
    #[serde(default)]
    pub trimmed_sentences: usize,
}

/// The note on an LLM answer some of whose sentences were removed by the checks.
pub fn trimmed_note(removed: usize) -> String {
    let sentences = if removed == 1 {
        "1 sentence".to_string()
    } else {
        format!("{removed} sentences")
    };
    format!(
        "{sentences} of the written answer did not match the guide's text and {} removed.",
        if removed == 1 { "was" } else { "were" }
    )
}

/// Why an LLM answer was replaced by the extractive one; callers log and count these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FallbackReason {
    #[error("the language model failed: {0}")]
    LlmFailed(String),
    #[error("the language model's answer cited nothing that could be checked against the guide")]
    Ungrounded,
    #[error("LLM answers are paused for this user (cooldown)")]
    Throttled,
    #[error("today's LLM budget for this user or server is spent")]
    OverBudget,
    #[error("LLM budgets cannot be checked: the database is unreachable")]
    StoreUnavailable,
}

impl FallbackReason {
    /// What the reader is told, in one short sentence.
    pub fn reader_note(&self) -> &'static str {
        match self {
            FallbackReason::LlmFailed(_) => {
                "The language model is unavailable right now, so this answer is quoted straight from the guide."
            }
            FallbackReason::Ungrounded => {
                "The language model's answer could not be checked against the guide, so this one is quoted straight from it."
            }
            FallbackReason::Throttled => {
                "You've reached the limit for written answers for now, so this one is quoted straight from the guide."
            }
            FallbackReason::OverBudget => {
                "Today's budget for written answers is used up, so this one is quoted straight from the guide."
            }
            FallbackReason::StoreUnavailable => {
                "Written answers are paused while the bot's database is unreachable, so this one is quoted straight from the guide."
            }
        }
    }

    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FallbackReason::LlmFailed(_) => "llm_failed",
            FallbackReason::Ungrounded => "ungrounded",
            FallbackReason::Throttled => "throttled",
            FallbackReason::OverBudget => "over_budget",
            FallbackReason::StoreUnavailable => "store_unavailable",
        }
    }
}

/// How many passages go into an answer (and to the LLM).
pub const ANSWER_PASSAGES: usize = 5;
