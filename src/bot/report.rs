//! What happened to one interaction, as typed values: the [`Command`], its [`Outcome`], the
//! answer mode and fallback. Logs and metric labels read them through `as_str()`; nothing compares
//! strings. [`InteractionObserver`] is where metrics and analytics plug in.

use crate::answer::{AnswerMode, FallbackReason};
use crate::metrics::Metrics;
use std::time::Duration;

/// Which command an interaction ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `/ask`.
    Ask,
    /// A message that mentioned the bot (answered like `/ask`).
    Mention,
    /// A question nobody asked the bot (answered only when covered): a new post in an
    /// auto-answer channel, or a follow-up without a mention in a thread the bot did not open.
    AutoAnswer,
    /// `/search`.
    Search,
    /// `/comp`.
    Comp,
    /// `/source`.
    Source,
    /// `/about`.
    About,
    /// A 👍/👎 press.
    Feedback,
    /// `/guidebot` (server administration).
    Admin,
    /// A "Still need help?" press (hand-off to the helper role).
    Escalate,
    /// Anything guidebot does not know.
    Unknown,
}

impl Command {
    /// The slash command called `name`.
    pub fn named(name: &str) -> Command {
        match name {
            "ask" => Command::Ask,
            "search" => Command::Search,
            "comp" => Command::Comp,
            "source" => Command::Source,
            "about" => Command::About,
            "guidebot" => Command::Admin,
            _ => Command::Unknown,
        }
    }

    /// Stable label for logs, metrics and analytics.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Ask => "ask",
            Command::Mention => "mention",
            Command::AutoAnswer => "auto_answer",
            Command::Search => "search",
            Command::Comp => "comp",
            Command::Source => "source",
            Command::About => "about",
            Command::Feedback => "feedback",
            Command::Admin => "guidebot",
            Command::Escalate => "escalate",
            Command::Unknown => "unknown",
        }
    }
}

/// How an interaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered from the guides (or by the LLM, checked against them).
    Answered,
    /// The guides do not cover the question.
    Refused,
    /// The LLM answer was replaced by the extractive one.
    Fallback,
    /// `/source` or `/comp` found nothing by that name.
    NotFound,
    /// Autocomplete choices sent.
    Autocomplete,
    /// A 👍 stored.
    Helpful,
    /// A 👎 stored.
    NotHelpful,
    /// The request could not be answered as asked (e.g. an empty question).
    Invalid,
    /// An unknown command.
    Unknown,
    /// The member may not do this (an admin command without Manage Server).
    Forbidden,
    /// The helper role was pinged.
    Escalated,
    /// A Discord call failed.
    DiscordError,
    /// The handler panicked; the user was told it failed.
    Panicked,
}

impl Outcome {
    /// Stable label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Refused => "refused",
            Outcome::Fallback => "fallback",
            Outcome::NotFound => "not_found",
            Outcome::Autocomplete => "autocomplete",
            Outcome::Helpful => "helpful",
            Outcome::NotHelpful => "not_helpful",
            Outcome::Invalid => "invalid",
            Outcome::Unknown => "unknown",
            Outcome::Forbidden => "forbidden",
            Outcome::Escalated => "escalated",
            Outcome::DiscordError => "discord_error",
            Outcome::Panicked => "panicked",
        }
    }
}

/// What happened, for logs, metrics and analytics.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionReport {
    /// The command that ran.
    pub command: Command,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether the first response was "thinking…" (an LLM answer followed as edits).
    pub deferred: bool,
    /// Who wrote the answer, for answers.
    pub mode: Option<AnswerMode>,
    /// Why the LLM answer was replaced, when it was.
    pub fallback: Option<FallbackReason>,
    /// LLM tokens read.
    pub input_tokens: u64,
    /// Of them, read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// LLM tokens written.
    pub output_tokens: u64,
    /// Relevance of the best passage, for answers and searches.
    pub top_coverage: Option<f32>,
    /// The question or query, for analytics (never logged at info level).
    pub question: Option<String>,
    /// The answer's key (question + index fingerprint), for feedback and the cache.
    pub answer_key: Option<String>,
    /// Edits sent after the first response.
    pub edits: usize,
    /// Served from the answer cache without an LLM call.
    pub cached: bool,
    /// "guide#section" of each citation, for analytics.
    pub citations: Vec<String>,
    /// The question continued a conversation (it was read with earlier turns).
    pub follow_up: bool,
}

impl InteractionReport {
    /// A report with nothing but the command and its outcome.
    pub fn new(command: Command, outcome: Outcome) -> Self {
        InteractionReport {
            command,
            outcome,
            deferred: false,
            mode: None,
            fallback: None,
            input_tokens: 0,
            cached_input_tokens: 0,
            output_tokens: 0,
            top_coverage: None,
            question: None,
            answer_key: None,
            edits: 0,
            cached: false,
            citations: Vec::new(),
            follow_up: false,
        }
    }
}

/// Sees every handled interaction: metrics plug in here so the transports stay thin.
/// Implementations must be cheap and must not fail.
pub trait InteractionObserver: Send + Sync {
    /// One interaction finished (or failed, or panicked) after `elapsed`.
    fn observe(&self, report: &InteractionReport, elapsed: Duration);
}

/// An observer that ignores everything (tests, CLI).
#[derive(Debug, Default)]
pub struct NoObserver;

impl InteractionObserver for NoObserver {
    fn observe(&self, _report: &InteractionReport, _elapsed: Duration) {}
}

impl InteractionObserver for Metrics {
    fn observe(&self, report: &InteractionReport, elapsed: Duration) {
        let command = report.command.as_str();
        self.count_request(command, report.outcome.as_str());
        self.observe_request(command, elapsed);
        if report.deferred {
            self.observe_llm(elapsed);
        } else if matches!(
            report.command,
            Command::Ask | Command::Search | Command::Mention | Command::AutoAnswer
        ) {
            self.observe_retrieval(elapsed);
        }
        self.add_llm_tokens_cached(
            report.input_tokens,
            report.cached_input_tokens,
            report.output_tokens,
        );
        if report.follow_up {
            self.count_follow_up(command);
        }
        match &report.fallback {
            Some(FallbackReason::Throttled) => self.count_llm_throttled(),
            Some(reason) => self.count_llm_error(reason.label()),
            None => {}
        }
        match report.outcome {
            Outcome::Escalated => self.count_escalation(),
            Outcome::Refused => self.count_refusal(command),
            Outcome::Panicked => self.count_panic(command),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_counted_under_their_names() {
        let metrics = Metrics::new();
        let mut report = InteractionReport::new(Command::Ask, Outcome::Fallback);
        report.deferred = true;
        report.input_tokens = 120;
        report.output_tokens = 30;
        report.fallback = Some(FallbackReason::LlmFailed("boom".into()));
        metrics.observe(&report, Duration::from_millis(1500));
        metrics.observe(
            &InteractionReport::new(Command::Search, Outcome::Refused),
            Duration::from_millis(2),
        );
        metrics.reject("bad_signature");
        metrics.set_index_fingerprint("abc123");
        metrics.set_index_fingerprint("def456");
        let text = metrics.encode();
        for expected in [
            "guidebot_requests_total{command=\"ask\",outcome=\"fallback\"} 1",
            "guidebot_requests_total{command=\"search\",outcome=\"refused\"} 1",
            "guidebot_llm_tokens_total{direction=\"input\"} 120",
            "guidebot_llm_tokens_total{direction=\"output\"} 30",
            "guidebot_llm_errors_total{reason=\"llm_failed\"} 1",
            "guidebot_refusals_total{command=\"search\"} 1",
            "guidebot_http_rejections_total{reason=\"bad_signature\"} 1",
            "guidebot_index_info{fingerprint=\"def456\"} 1",
            "guidebot_llm_seconds_count 1",
            "guidebot_retrieval_seconds_count 1",
            "guidebot_request_seconds_count{command=\"ask\"} 1",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        assert!(!text.contains("abc123"), "old fingerprint kept:\n{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn hand_offs_and_follow_ups_are_counted() {
        let metrics = Metrics::new();
        metrics.observe(
            &InteractionReport::new(Command::Escalate, Outcome::Escalated),
            Duration::from_millis(2),
        );
        let mut follow_up = InteractionReport::new(Command::Mention, Outcome::Answered);
        follow_up.follow_up = true;
        follow_up.input_tokens = 4100;
        follow_up.cached_input_tokens = 4000;
        metrics.observe(&follow_up, Duration::from_millis(2));
        let text = metrics.encode();
        for expected in [
            "guidebot_llm_tokens_total{direction=\"input\"} 4100",
            "guidebot_llm_tokens_total{direction=\"input_cached\"} 4000",
            "guidebot_llm_tokens_total{direction=\"input_uncached\"} 100",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
        assert!(text.contains("guidebot_escalations_total 1"), "{text}");
        assert!(
            text.contains("guidebot_follow_ups_total{command=\"mention\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn panics_are_counted() {
        let metrics = Metrics::new();
        metrics.observe(
            &InteractionReport::new(Command::Ask, Outcome::Panicked),
            Duration::from_millis(2),
        );
        let text = metrics.encode();
        assert!(
            text.contains("guidebot_handler_panics_total{command=\"ask\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("guidebot_requests_total{command=\"ask\",outcome=\"panicked\"} 1"),
            "{text}"
        );
    }
}
