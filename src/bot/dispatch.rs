//! The one command dispatcher: a plain request in, engine calls, a rendered reply out through a
//! [`Responder`] that the transport supplies (serenity's HTTP client in gateway mode, the HTTP
//! response plus webhook edits in interactions-endpoint mode).

use super::render::{self, AnswerFrame, Rendered};
use super::request::{BotRequest, Invocation};
use crate::answer::{Answer, FallbackReason};
use crate::comp::CompQuery;
use crate::engine::{AnswerEvent, AnswerOptions, Engine, EngineHandle, LlmPermission};
use crate::search::{SearchError, SearchOptions};
use crate::store::{day_of, hash_id, now_unix, BudgetScope, FeedbackRecord, QuestionRecord, Store};
use futures::StreamExt;
use serenity::all::{
    AutocompleteChoice, CreateAutocompleteResponse, CreateInteractionResponse,
    EditInteractionResponse,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the bot behaves; one struct instead of loose flags.
#[derive(Debug, Clone)]
pub struct BotSettings {
    /// Minimum time between two LLM answers for one user; inside it the user gets the extractive answer.
    pub llm_cooldown: Duration,
    /// Minimum time between two edits of a streaming answer (Discord rate-limits edits).
    pub edit_interval: Duration,
    /// Answer mentions in a new thread instead of a reply in the channel.
    pub mention_replies_in_thread: bool,
    /// Daily LLM budgets per user and per guild (requests and tokens); `None` = unlimited.
    pub budgets: Budgets,
    /// How long a written (LLM) answer is served from the cache; zero disables the cache.
    pub answer_cache_ttl: Duration,
    /// Salt for hashing Discord ids before storage.
    pub id_salt: String,
}

/// Daily LLM allowances; they hold across restarts because usage is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budgets {
    pub user_requests_per_day: Option<u64>,
    pub user_tokens_per_day: Option<u64>,
    pub guild_requests_per_day: Option<u64>,
    pub guild_tokens_per_day: Option<u64>,
}

impl Default for BotSettings {
    fn default() -> Self {
        BotSettings {
            llm_cooldown: Duration::from_secs(20),
            edit_interval: Duration::from_millis(1200),
            mention_replies_in_thread: false,
            budgets: Budgets::default(),
            answer_cache_ttl: Duration::from_secs(6 * 3600),
            id_salt: "guidebot".to_string(),
        }
    }
}

/// A Discord call failed; the transport logs it (one failure never stops the bot).
#[derive(Debug, thiserror::Error)]
#[error("Discord call failed: {0}")]
pub struct ResponderError(pub String);

/// Sends the responses of one interaction. Gateway and HTTP modes implement it differently; the
/// dispatcher does not know which it talks to.
pub trait Responder: Send + Sync {
    /// The initial response (callback type 1/4/5/8), which must come within 3 seconds.
    fn respond(
        &self,
        response: CreateInteractionResponse,
    ) -> impl Future<Output = Result<(), ResponderError>> + Send;
    /// An edit of the original response (for deferred and streaming answers).
    fn edit(
        &self,
        edit: EditInteractionResponse,
    ) -> impl Future<Output = Result<(), ResponderError>> + Send;
}

/// What happened, for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionReport {
    pub command: &'static str,
    /// "answered", "refused", "fallback", "not_found", "autocomplete", "feedback", "invalid", "unknown"
    pub outcome: &'static str,
    pub deferred: bool,
    pub mode: Option<&'static str>,
    pub fallback: Option<&'static str>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub top_coverage: Option<f32>,
    /// The question or query, for analytics (never logged at info level).
    pub question: Option<String>,
    pub answer_key: Option<String>,
    pub edits: usize,
    /// Served from the answer cache without an LLM call.
    pub cached: bool,
    /// "guide#section" of each citation, for analytics.
    pub citations: Vec<String>,
}

impl InteractionReport {
    /// A report with nothing but the command and its outcome.
    pub fn new(command: &'static str, outcome: &'static str) -> Self {
        InteractionReport {
            command,
            outcome,
            deferred: false,
            mode: None,
            fallback: None,
            input_tokens: 0,
            output_tokens: 0,
            top_coverage: None,
            question: None,
            answer_key: None,
            edits: 0,
            cached: false,
            citations: Vec::new(),
        }
    }
}

/// Sees every handled interaction: metrics, analytics and feedback storage plug in here so the
/// transports stay thin. Implementations must be cheap and must not fail.
pub trait InteractionObserver: Send + Sync {
    fn observe(&self, report: &InteractionReport, elapsed: Duration);
}

/// An observer that ignores everything (tests, CLI).
#[derive(Debug, Default)]
pub struct NoObserver;

impl InteractionObserver for NoObserver {
    fn observe(&self, _report: &InteractionReport, _elapsed: Duration) {}
}

/// Routes requests to the engine and replies through a [`Responder`].
pub struct Dispatcher {
    engines: Arc<EngineHandle>,
    engine: Arc<Engine>,
    settings: BotSettings,
    last_llm_answer: Arc<Mutex<HashMap<u64, Instant>>>,
    observer: Arc<dyn InteractionObserver>,
    store: Option<Arc<dyn Store>>,
}

impl Dispatcher {
    /// Adds storage: feedback, question analytics, budgets and the answer cache.
    pub fn with_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The storage, when configured.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    /// A dispatcher over the engine `engines` currently serves; see [`Dispatcher::snapshot`].
    pub fn new(
        engines: Arc<EngineHandle>,
        settings: BotSettings,
        observer: Arc<dyn InteractionObserver>,
    ) -> Self {
        let engine = engines.current();
        Dispatcher {
            engines,
            engine,
            settings,
            last_llm_answer: Arc::new(Mutex::new(HashMap::new())),
            observer,
            store: None,
        }
    }

    /// A dispatcher for one request, bound to the engine serving right now (so a reload never
    /// changes the engine under a request in flight). Cooldowns and the observer are shared.
    pub fn snapshot(&self) -> Dispatcher {
        Dispatcher {
            engines: Arc::clone(&self.engines),
            engine: self.engines.current(),
            settings: self.settings.clone(),
            last_llm_answer: Arc::clone(&self.last_llm_answer),
            observer: Arc::clone(&self.observer),
            store: self.store.clone(),
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The swappable engine handle (for reloads and readiness checks).
    pub fn engines(&self) -> &Arc<EngineHandle> {
        &self.engines
    }

    /// Reports an interaction to the observer (transports call this for work they do themselves,
    /// e.g. mentions).
    pub fn observe(&self, report: &InteractionReport, elapsed: Duration) {
        self.observer.observe(report, elapsed);
    }

    pub fn settings(&self) -> &BotSettings {
        &self.settings
    }

    /// Handles one interaction end to end on the engine serving now. Quick commands answer
    /// directly; LLM answers are deferred at once and then edited as the model writes. The report
    /// goes to the observer, failed or not.
    pub async fn run_interaction<R: Responder>(
        &self,
        invocation: Invocation,
        responder: &R,
    ) -> Result<InteractionReport, ResponderError> {
        let started = Instant::now();
        let snapshot = self.snapshot();
        let result = snapshot.run_interaction_inner(invocation, responder).await;
        match &result {
            Ok(report) => self.observer.observe(report, started.elapsed()),
            Err(_) => self.observer.observe(
                &InteractionReport::new("unknown", "discord_error"),
                started.elapsed(),
            ),
        }
        result
    }

    async fn run_interaction_inner<R: Responder>(
        &self,
        invocation: Invocation,
        responder: &R,
    ) -> Result<InteractionReport, ResponderError> {
        let asker = Asker {
            user_id: invocation.user_id,
            guild_id: invocation.guild_id,
        };
        match invocation.request {
            BotRequest::Ask { question, private } => {
                let report = self.run_ask(&asker, &question, private, responder).await?;
                self.record_question(&asker, &report);
                Ok(report)
            }
            BotRequest::Mention { question } => {
                let report = self.run_ask(&asker, &question, false, responder).await?;
                self.record_question(&asker, &report);
                Ok(report)
            }
            BotRequest::Autocomplete {
                command,
                option,
                partial,
            } => {
                let choices = self.autocomplete(&command, &option, &partial);
                let response = CreateInteractionResponse::Autocomplete(
                    CreateAutocompleteResponse::new().set_choices(choices),
                );
                responder.respond(response).await?;
                Ok(InteractionReport::new(
                    command_label(&command),
                    "autocomplete",
                ))
            }
            BotRequest::Feedback {
                helpful,
                answer_key,
            } => {
                // Stored before the acknowledgement, so a reader who sees the ack sees the vote.
                if let Some(store) = &self.store {
                    let record = FeedbackRecord {
                        at_unix: now_unix(),
                        user_hash: hash_id(&self.settings.id_salt, asker.user_id),
                        answer_key: answer_key.clone(),
                        helpful,
                    };
                    if let Err(error) = store.record_feedback(&record) {
                        tracing::warn!(%error, "could not store feedback");
                    }
                }
                let text = if helpful {
                    "Thanks! Glad it helped."
                } else {
                    "Thanks for telling us. Unhelpful answers go to the maintainers to improve the guides and the bot."
                };
                responder
                    .respond(render::render_notice(text, true).to_interaction_response())
                    .await?;
                let mut report = InteractionReport::new(
                    "feedback",
                    if helpful { "helpful" } else { "not_helpful" },
                );
                report.answer_key = Some(answer_key);
                Ok(report)
            }
            other => {
                let (rendered, report) = self.quick_reply(other);
                responder
                    .respond(rendered.to_interaction_response())
                    .await?;
                if report.command == "search" {
                    self.record_question(&asker, &report);
                }
                Ok(report)
            }
        }
    }

    /// Stores a question for analytics (hashed ids only); failures are logged, never raised.
    fn record_question(&self, asker: &Asker, report: &InteractionReport) {
        let (Some(store), Some(question)) = (&self.store, &report.question) else {
            return;
        };
        let record = QuestionRecord {
            at_unix: now_unix(),
            user_hash: hash_id(&self.settings.id_salt, asker.user_id),
            guild_hash: asker.guild_id.map(|id| hash_id(&self.settings.id_salt, id)),
            command: report.command.to_string(),
            question: question.clone(),
            refused: report.outcome == "refused",
            mode: report.mode.unwrap_or("none").to_string(),
            top_coverage: report.top_coverage,
            answer_key: report.answer_key.clone(),
            citations: report.citations.clone(),
            fingerprint: self.engine.fingerprint().to_string(),
        };
        if let Err(error) = store.record_question(&record) {
            tracing::warn!(%error, "could not store question analytics");
        }
    }

    /// Replies that need no LLM and no waiting: search, comp, source, about, unknown.
    pub fn quick_reply(&self, request: BotRequest) -> (Rendered, InteractionReport) {
        match request {
            BotRequest::Search { query } => match self.engine.search(&query, &SearchOptions { limit: 5 }) {
                Ok(results) => {
                    let mut report =
                        InteractionReport::new("search", if results.relevant { "answered" } else { "refused" });
                    report.top_coverage = Some(results.coverage);
                    report.question = Some(query);
                    (render::render_search(&results), report)
                }
                Err(error) => (
                    render::render_notice(&error.to_string(), true),
                    InteractionReport::new("search", "invalid"),
                ),
            },
            BotRequest::Comp { company, level, compare } => {
                let mut companies = vec![company.clone()];
                if let Some(other) = &compare {
                    companies.push(other.clone());
                }
                companies.retain(|name| !name.trim().is_empty());
                if companies.is_empty() {
                    return (
                        render::render_notice("Name a company, e.g. `/comp company: Google`.", true),
                        InteractionReport::new("comp", "invalid"),
                    );
                }
                let asked = companies.join(" vs ");
                let lookup = self.engine.comp(&CompQuery {
                    companies,
                    level,
                    role: None,
                });
                let outcome = if lookup.rows.is_empty() { "not_found" } else { "answered" };
                (render::render_comp(&lookup, &asked), InteractionReport::new("comp", outcome))
            }
            BotRequest::Source { section } => match self.engine.section(&section) {
                Some(view) => (render::render_section(&view), InteractionReport::new("source", "answered")),
                None => {
                    let suggestions: Vec<String> = self
                        .engine
                        .section_choices(&section)
                        .into_iter()
                        .take(5)
                        .map(|choice| format!("• {}", choice.name))
                        .collect();
                    let mut text = format!("No section called \"{}\".", render::truncate(&section, 100));
                    if !suggestions.is_empty() {
                        text.push_str(&format!(" Did you mean:\n{}", suggestions.join("\n")));
                    }
                    (render::render_notice(&text, true), InteractionReport::new("source", "not_found"))
                }
            },
            BotRequest::About => (
                render::render_about(&self.engine.about()),
                InteractionReport::new("about", "answered"),
            ),
            BotRequest::Unknown { name } => (
                render::render_notice(
                    &format!(
                        "I don't know the command \"{}\". Try /ask, /search, /comp, /source or /about.",
                        render::truncate(&name, 60)
                    ),
                    true,
                ),
                InteractionReport::new("unknown", "unknown"),
            ),
            BotRequest::Ask { question, .. } | BotRequest::Mention { question } => {
                // Only reached when a transport asks for a quick reply to a question: extractive.
                let (rendered, report) = self.extractive_reply(&question, false);
                (rendered, report)
            }
            BotRequest::Autocomplete { command, .. } => (
                render::render_notice("Autocomplete is answered with choices.", true),
                InteractionReport::new(command_label(&command), "invalid"),
            ),
            BotRequest::Feedback { .. } => (
                render::render_notice("Thanks for the feedback!", true),
                InteractionReport::new("feedback", "helpful"),
            ),
        }
    }

    /// Autocomplete choices for `/comp` and `/source` (at most 25, names within 100 characters).
    pub fn autocomplete(
        &self,
        command: &str,
        option: &str,
        partial: &str,
    ) -> Vec<AutocompleteChoice> {
        match (command, option) {
            ("comp", "company") | ("comp", "compare") => self
                .engine
                .comp_choices(partial)
                .into_iter()
                .take(25)
                .map(|choice| {
                    AutocompleteChoice::new(
                        render::truncate(&choice.name, 100),
                        render::truncate(&choice.value, 100),
                    )
                })
                .collect(),
            ("source", "section") => self
                .engine
                .section_choices(partial)
                .into_iter()
                .take(25)
                .map(|choice| AutocompleteChoice::new(choice.name, choice.value))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether this user may get an LLM answer now (cooldown, then daily budgets); records the
    /// use when allowed.
    fn llm_permission(&self, asker: &Asker) -> LlmPermission {
        if !self.engine.has_llm() {
            return LlmPermission::Allowed;
        }
        if self.over_budget(asker) {
            return LlmPermission::Denied(FallbackReason::OverBudget);
        }
        let user_id = asker.user_id;
        let now = Instant::now();
        let Ok(mut last) = self.last_llm_answer.lock() else {
            return LlmPermission::Allowed;
        };
        if let Some(previous) = last.get(&user_id) {
            if now.duration_since(*previous) < self.settings.llm_cooldown {
                return LlmPermission::Denied(FallbackReason::Throttled);
            }
        }
        last.insert(user_id, now);
        if last.len() > 100_000 {
            let cooldown = self.settings.llm_cooldown;
            last.retain(|_, at| now.duration_since(*at) < cooldown);
        }
        LlmPermission::Allowed
    }

    fn budget_scopes(&self, asker: &Asker) -> Vec<(BudgetScope, Option<u64>, Option<u64>)> {
        let budgets = &self.settings.budgets;
        let mut scopes = vec![(
            BudgetScope::User(hash_id(&self.settings.id_salt, asker.user_id)),
            budgets.user_requests_per_day,
            budgets.user_tokens_per_day,
        )];
        if let Some(guild) = asker.guild_id {
            scopes.push((
                BudgetScope::Guild(hash_id(&self.settings.id_salt, guild)),
                budgets.guild_requests_per_day,
                budgets.guild_tokens_per_day,
            ));
        }
        scopes
    }

    fn over_budget(&self, asker: &Asker) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        let today = day_of(now_unix());
        for (scope, max_requests, max_tokens) in self.budget_scopes(asker) {
            if max_requests.is_none() && max_tokens.is_none() {
                continue;
            }
            match store.usage(&scope, &today) {
                Ok(usage) => {
                    if max_requests.is_some_and(|max| usage.requests >= max)
                        || max_tokens.is_some_and(|max| usage.tokens >= max)
                    {
                        return true;
                    }
                }
                // Fail open: a broken database must not silence the bot; the error is logged.
                Err(error) => tracing::warn!(%error, "could not read LLM usage"),
            }
        }
        false
    }

    fn charge_usage(&self, asker: &Asker, answer: &Answer) {
        let (Some(store), Some(usage)) = (&self.store, answer.usage) else {
            return;
        };
        let today = day_of(now_unix());
        let tokens = usage.input_tokens + usage.output_tokens;
        for (scope, _, _) in self.budget_scopes(asker) {
            if let Err(error) = store.add_usage(&scope, &today, tokens) {
                tracing::warn!(%error, "could not record LLM usage");
            }
        }
    }

    fn cached(&self, key: &str) -> Option<Answer> {
        let store = self.store.as_ref()?;
        if self.settings.answer_cache_ttl.is_zero() || !self.engine.has_llm() {
            return None;
        }
        match store.cached_answer(key, self.settings.answer_cache_ttl, now_unix()) {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, "answer cache unreadable");
                None
            }
        }
    }

    fn answer_frame(&self, answer: &Answer, ephemeral: bool) -> AnswerFrame {
        let about = self.engine.about();
        let mut as_of: Vec<String> = about
            .guides
            .iter()
            .filter(|guide| {
                answer
                    .citations
                    .iter()
                    .any(|citation| citation.guide == guide.slug)
            })
            .map(|guide| guide.as_of.clone())
            .collect();
        as_of.dedup();
        let freshness = if as_of.is_empty() {
            String::new()
        } else {
            format!("Guide data as of {} · ", as_of.join(", "))
        };
        AnswerFrame {
            footer: format!("{freshness}answer: {}", answer.mode.as_str()),
            feedback_key: Some(answer_key(&answer.question, self.engine.fingerprint())),
            ephemeral,
        }
    }

    fn extractive_reply(&self, question: &str, ephemeral: bool) -> (Rendered, InteractionReport) {
        match self.engine.answer_extractive(question) {
            Ok(answer) => {
                let report = answer_report("ask", &answer, false);
                (
                    render::render_answer(&answer, &self.answer_frame(&answer, ephemeral)),
                    report,
                )
            }
            Err(error) => (
                render::render_notice(&error.to_string(), true),
                InteractionReport::new("ask", "invalid"),
            ),
        }
    }

    async fn run_ask<R: Responder>(
        &self,
        asker: &Asker,
        question: &str,
        private: bool,
        responder: &R,
    ) -> Result<InteractionReport, ResponderError> {
        let key = answer_key(question, self.engine.fingerprint());
        if let Some(answer) = self.cached(&key) {
            tracing::info!(
                cached = true,
                "answer served from the cache without an LLM call"
            );
            let rendered = render::render_answer(&answer, &self.answer_frame(&answer, private));
            responder
                .respond(rendered.to_interaction_response())
                .await?;
            let mut report = answer_report("ask", &answer, false);
            report.cached = true;
            report.answer_key = Some(key);
            return Ok(report);
        }
        let permission = self.llm_permission(asker);
        let llm_allowed = self.engine.has_llm() && permission == LlmPermission::Allowed;
        let options = AnswerOptions { llm: permission };
        if !llm_allowed {
            // Extractive (or throttled) answers take milliseconds: answer in the response itself.
            let answer = match self.engine.answer_events(question, &options) {
                Ok(mut events) => {
                    let mut last = None;
                    while let Some(event) = events.next().await {
                        if let AnswerEvent::Final(answer) = event {
                            last = Some(answer);
                        }
                    }
                    last
                }
                Err(SearchError::EmptyQuery) => None,
                Err(error) => {
                    tracing::warn!(%error, "search failed");
                    None
                }
            };
            let Some(answer) = answer else {
                responder
                    .respond(
                        render::render_notice(&SearchError::EmptyQuery.to_string(), true)
                            .to_interaction_response(),
                    )
                    .await?;
                return Ok(InteractionReport::new("ask", "invalid"));
            };
            let rendered = render::render_answer(&answer, &self.answer_frame(&answer, private));
            responder
                .respond(rendered.to_interaction_response())
                .await?;
            let mut report = answer_report("ask", &answer, false);
            report.answer_key = Some(key);
            return Ok(report);
        }

        // LLM answers: acknowledge now, then edit as the stream grows.
        responder.respond(render::deferred(private)).await?;
        let mut report = InteractionReport::new("ask", "answered");
        report.deferred = true;
        let mut events = match self.engine.answer_events(question, &options) {
            Ok(events) => events,
            Err(error) => {
                let rendered = render::render_notice(&error.to_string(), private);
                responder.edit(rendered.to_edit()).await?;
                report.outcome = "invalid";
                return Ok(report);
            }
        };
        let mut last_edit: Option<Instant> = None;
        let mut edits = 0usize;
        while let Some(event) = events.next().await {
            match event {
                AnswerEvent::Partial(text) => {
                    let due =
                        last_edit.is_none_or(|at| at.elapsed() >= self.settings.edit_interval);
                    if due {
                        let rendered = render::render_partial(question, &text, private);
                        // A failed intermediate edit is not fatal: the final edit carries the answer.
                        match responder.edit(rendered.to_edit()).await {
                            Ok(()) => edits += 1,
                            Err(error) => tracing::warn!(%error, "streaming edit failed"),
                        }
                        last_edit = Some(Instant::now());
                    }
                }
                AnswerEvent::Final(answer) => {
                    let rendered =
                        render::render_answer(&answer, &self.answer_frame(&answer, private));
                    let sent = responder.edit(rendered.to_edit()).await;
                    self.charge_usage(asker, &answer);
                    if answer.fallback.is_none() && !answer.refused && answer.usage.is_some() {
                        if let Some(store) = &self.store {
                            if let Err(error) = store.put_cached_answer(&key, &answer, now_unix()) {
                                tracing::warn!(%error, "could not cache the answer");
                            }
                        }
                    }
                    sent?;
                    edits += 1;
                    let mut final_report = answer_report("ask", &answer, true);
                    final_report.edits = edits;
                    final_report.answer_key = Some(key);
                    return Ok(final_report);
                }
            }
        }
        // The stream always ends with Final; if it did not, fall back to the extractive answer.
        let (rendered, mut fallback_report) = self.extractive_reply(question, private);
        responder.edit(rendered.to_edit()).await?;
        fallback_report.deferred = true;
        fallback_report.edits = edits + 1;
        Ok(fallback_report)
    }

    /// The final answer to a message that mentioned the bot (LLM when allowed, not streamed).
    pub async fn answer_mention(
        &self,
        user_id: u64,
        question: &str,
    ) -> (Rendered, InteractionReport) {
        self.answer_mention_in(user_id, None, question).await
    }

    /// Like [`Dispatcher::answer_mention`], counting the guild's budget too.
    pub async fn answer_mention_in(
        &self,
        user_id: u64,
        guild_id: Option<u64>,
        question: &str,
    ) -> (Rendered, InteractionReport) {
        let asker = Asker { user_id, guild_id };
        let options = AnswerOptions {
            llm: self.llm_permission(&asker),
        };
        match self.engine.answer(question, &options).await {
            Ok(answer) => {
                self.charge_usage(&asker, &answer);
                let mut report = answer_report("mention", &answer, false);
                report.answer_key = Some(answer_key(question, self.engine.fingerprint()));
                self.record_question(&asker, &report);
                (
                    render::render_answer(&answer, &self.answer_frame(&answer, false)),
                    report,
                )
            }
            Err(error) => (
                render::render_notice(&error.to_string(), false),
                InteractionReport::new("mention", "invalid"),
            ),
        }
    }
}

/// A stable key for an answer (question + corpus fingerprint), used by the feedback buttons.
pub fn answer_key(question: &str, fingerprint: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(crate::store::normalize_question(question).as_bytes());
    hasher.update(b"\0");
    hasher.update(fingerprint.as_bytes());
    hex::encode(&hasher.finalize()[..10])
}

fn answer_report(command: &'static str, answer: &Answer, deferred: bool) -> InteractionReport {
    let mut report = InteractionReport::new(
        command,
        if answer.refused {
            "refused"
        } else if answer.fallback.is_some() {
            "fallback"
        } else {
            "answered"
        },
    );
    report.deferred = deferred;
    report.mode = Some(answer.mode.as_str());
    report.fallback = answer.fallback.as_ref().map(FallbackReason::label);
    if let Some(usage) = answer.usage {
        report.input_tokens = usage.input_tokens;
        report.output_tokens = usage.output_tokens;
    }
    report.top_coverage = Some(answer.coverage);
    report.question = Some(answer.question.clone());
    report.citations = answer
        .citations
        .iter()
        .map(|citation| format!("{}#{}", citation.guide, citation.section_id))
        .collect();
    report
}

/// Who asked: the ids used for cooldowns, budgets and (hashed) analytics.
#[derive(Debug, Clone, Copy)]
struct Asker {
    user_id: u64,
    guild_id: Option<u64>,
}

fn command_label(command: &str) -> &'static str {
    match command {
        "ask" => "ask",
        "search" => "search",
        "comp" => "comp",
        "source" => "source",
        "about" => "about",
        _ => "unknown",
    }
}
