//! The one command dispatcher: a plain request in, engine calls, a rendered reply out through a
//! [`Responder`] that the transport supplies (serenity's REST client for gateway interactions and
//! mentions, the HTTP response plus webhook edits in interactions-endpoint mode).
//!
//! Every request, mentions included, goes through [`Dispatcher::run_interaction`]: one engine
//! snapshot per request, cooldowns, daily budgets, the answer cache and analytics apply alike,
//! and a panicking handler is caught, counted and reported as [`DispatchError::Panicked`] so the
//! transport can tell the user. Storage goes through [`Storage`]: writes are queued for its
//! batching writer (never on the request's path); only an LLM claim (budgets and cooldown, charged
//! atomically in the shared store) and a cache lookup are awaited, and a claim that cannot reach
//! the database refuses the LLM answer (fail closed) rather than overspend.

use super::admin::{ChannelSettings, FileChannelSettings, ServerStats, StatsBook, StatsEvent};
use super::conversation::{
    ConversationHistory, ConversationKey, HistoryLimits, MemoryHistory, StoreHistory,
};
use super::render::{self, AnswerFrame, Rendered, Reply};
use super::report::{Command, InteractionObserver, InteractionReport, Outcome};
use super::request::{AdminAction, BotRequest, Invocation};
use crate::answer::{Answer, FallbackReason};
use crate::comp::CompQuery;
use crate::engine::{AnswerEvent, AnswerOptions, Engine, EngineHandle, LlmPermission, PriorTurn};
use crate::search::{SearchError, SearchOptions};
use crate::store::{
    hash_id, normalize_question, now_millis, BudgetScope, ClaimOutcome, Cooldown, EscalationRecord,
    FeedbackRecord, LlmClaim, QuestionRecord, ScopeLimit, Storage, StorageOptions, Store, Write,
};
use crate::util::clock::{day_of, now_unix};
use futures::{FutureExt, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the bot behaves; one struct instead of loose flags.
#[derive(Debug, Clone)]
pub struct BotSettings {
    /// Minimum time between two LLM answers for one user; inside it the user gets the extractive answer.
    pub llm_cooldown: Duration,
    /// Minimum time between two edits of a streaming answer (Discord rate-limits edits).
    pub edit_interval: Duration,
    /// Daily LLM budgets per user and per guild (requests and tokens); `None` = unlimited.
    pub budgets: Budgets,
    /// How long a written (LLM) answer is served from the cache; zero disables the cache.
    pub answer_cache_ttl: Duration,
    /// Salt for hashing Discord ids before storage.
    pub id_salt: String,
    /// How much of a conversation a follow-up sees (turns and age).
    pub history: HistoryLimits,
    /// The role "Still need help?" pings; `None` hides the button.
    pub helper_role_id: Option<u64>,
}

/// Daily LLM allowances; they hold across restarts because usage is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budgets {
    /// LLM answers per user per day.
    pub user_requests_per_day: Option<u64>,
    /// LLM tokens per user per day.
    pub user_tokens_per_day: Option<u64>,
    /// LLM answers per guild per day.
    pub guild_requests_per_day: Option<u64>,
    /// LLM tokens per guild per day.
    pub guild_tokens_per_day: Option<u64>,
}

impl Default for BotSettings {
    fn default() -> Self {
        BotSettings {
            llm_cooldown: Duration::from_secs(20),
            edit_interval: Duration::from_millis(1200),
            budgets: Budgets::default(),
            answer_cache_ttl: Duration::from_secs(6 * 3600),
            id_salt: "guidebot".to_string(),
            history: HistoryLimits::default(),
            helper_role_id: None,
        }
    }
}

/// A Discord call failed; the transport logs it (one failure never stops the bot).
#[derive(Debug, thiserror::Error)]
#[error("Discord call failed: {0}")]
pub struct ResponderError(pub String);

/// Why [`Dispatcher::run_interaction`] did not finish normally; either way the transport tells
/// the user it failed, where Discord still allows it.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A Discord call failed.
    #[error(transparent)]
    Discord(#[from] ResponderError),
    /// The handler panicked (already counted and logged).
    #[error("the handler panicked: {0}")]
    Panicked(String),
}

/// Sends the replies of one request. Gateway, HTTP and mention replies implement it differently;
/// the dispatcher does not know which it talks to.
pub trait Responder: Send + Sync {
    /// The first reply (for interactions: within 3 seconds).
    fn respond(&self, reply: Reply) -> impl Future<Output = Result<(), ResponderError>> + Send;
    /// A new version of the reply (deferred and streaming answers).
    fn edit(&self, rendered: Rendered) -> impl Future<Output = Result<(), ResponderError>> + Send;
    /// Whether partial answers are shown while the LLM writes; when false, only the final
    /// answer is sent as the edit (a channel reply is posted once).
    fn streams(&self) -> bool {
        true
    }
}

/// Routes requests to the engine serving now and replies through a [`Responder`].
pub struct Dispatcher {
    engines: Arc<EngineHandle>,
    settings: BotSettings,
    last_llm_answer: Mutex<HashMap<u64, Instant>>,
    observer: Arc<dyn InteractionObserver>,
    store: Option<Arc<Storage>>,
    /// Why the configured store could not be opened, when the dispatcher serves without it.
    store_unavailable: Option<String>,
    history: Arc<dyn ConversationHistory>,
    /// The history was set with [`Dispatcher::with_history`]: storage does not replace it.
    history_chosen: bool,
    channels: Arc<dyn ChannelSettings>,
    stats: StatsBook,
    reload: Option<crate::reload::ReloadTrigger>,
}

/// Days of questions and feedback `/guidebot stats` shows when a store keeps them.
const STATS_DAYS: u32 = 30;

/// Who asked: the ids used for cooldowns, budgets and (hashed) analytics.
#[derive(Debug, Clone, Copy)]
struct Asker {
    user_id: u64,
    guild_id: Option<u64>,
}

/// The store's verdict on an interaction id ([`Dispatcher::first_sighting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// The store holds the id now and had not seen it: the request runs.
    FirstSighting,
    /// The store has seen the id before: a replay, refused.
    Replay,
    /// No store, or the store could not be read: the caller's own memory must decide.
    NotChecked,
}

impl Dispatcher {
    /// A dispatcher over whatever engine `engines` serves at each request.
    pub fn new(
        engines: Arc<EngineHandle>,
        settings: BotSettings,
        observer: Arc<dyn InteractionObserver>,
    ) -> Self {
        let history = Arc::new(MemoryHistory::new(settings.history));
        Dispatcher {
            engines,
            settings,
            last_llm_answer: Mutex::new(HashMap::new()),
            observer,
            store: None,
            store_unavailable: None,
            history,
            history_chosen: false,
            channels: Arc::new(FileChannelSettings::in_memory()),
            stats: StatsBook::default(),
            reload: None,
        }
    }

    /// Keeps channel modes somewhere else than memory (a file, the store).
    pub fn with_channel_settings(mut self, channels: Arc<dyn ChannelSettings>) -> Self {
        self.channels = channels;
        self
    }

    /// Lets `/guidebot reload` rebuild the index through the live reloader.
    pub fn with_reload(mut self, trigger: crate::reload::ReloadTrigger) -> Self {
        self.reload = Some(trigger);
        self
    }

    /// The channel modes: the gateway reads them before answering a message.
    pub fn channel_settings(&self) -> &Arc<dyn ChannelSettings> {
        &self.channels
    }

    /// This process's per-server counters (`/guidebot stats`).
    pub fn stats(&self) -> &StatsBook {
        &self.stats
    }

    /// Keeps conversations in `history` rather than the default (the store when one is added,
    /// else this process's memory); storage added later does not replace it.
    pub fn with_history(mut self, history: Arc<dyn ConversationHistory>) -> Self {
        self.history = history;
        self.history_chosen = true;
        self
    }

    /// The conversations: transports link their posted answers and look up threads here.
    pub fn conversations(&self) -> &Arc<dyn ConversationHistory> {
        &self.history
    }

    /// Adds storage: feedback, question analytics, budgets, cooldowns, replay ids, the answer
    /// cache and conversation history, through a new [`Storage`] (its writer starts on the
    /// current runtime) over a store that is ready to use.
    pub fn with_store(self, store: Arc<dyn Store>) -> Self {
        self.with_storage(Storage::start(store, StorageOptions::default(), true))
    }

    /// Adds storage that the caller also holds (to flush it at shutdown, or follow its health).
    /// Conversations then live in the store ([`StoreHistory`]), so every replica sharing it
    /// continues the same threads, also after a restart (unless [`Dispatcher::with_history`]
    /// chose another history).
    pub fn with_storage(mut self, storage: Arc<Storage>) -> Self {
        if !self.history_chosen {
            self.history = Arc::new(StoreHistory::new(
                Arc::clone(&storage),
                self.settings.history,
                &self.settings.id_salt,
            ));
        }
        self.store = Some(storage);
        self
    }

    /// The storage in use, if any.
    pub fn storage(&self) -> Option<&Arc<Storage>> {
        self.store.as_ref()
    }

    /// Records why the configured store could not be opened: the dispatcher serves without it
    /// (LLM answers refused while budgets are configured) and `/readyz` reports it.
    pub fn without_store_because(mut self, reason: String) -> Self {
        self.store_unavailable = Some(reason);
        self
    }

    /// Why the configured store could not be opened, when the dispatcher serves without it.
    pub fn store_unavailable(&self) -> Option<&str> {
        self.store_unavailable.as_deref()
    }

    /// Waits (up to `timeout`) until every write queued so far is in the store; `true` without a
    /// store. For tests and shutdown.
    pub async fn flush_storage(&self, timeout: Duration) -> bool {
        match &self.store {
            Some(storage) => storage.flush(timeout).await,
            None => true,
        }
    }

    /// What the store says about an interaction id: seen before by any replica sharing it (with
    /// SQLite, by this process: fresh ids are answered from memory, see
    /// [`Storage::first_sighting`]), or not. Without a store, or when the store cannot be read,
    /// nobody vouched ([`ReplayCheck::NotChecked`]) and the HTTP endpoint's own memory
    /// (`transport::replay`) decides.
    pub async fn first_sighting(&self, interaction_id: &str) -> ReplayCheck {
        let Some(storage) = &self.store else {
            return ReplayCheck::NotChecked;
        };
        match storage.first_sighting(interaction_id, now_unix()).await {
            Ok(true) => ReplayCheck::FirstSighting,
            Ok(false) => ReplayCheck::Replay,
            Err(error) => {
                tracing::warn!(%error, "could not check the interaction id against replays");
                ReplayCheck::NotChecked
            }
        }
    }

    /// The swappable engine handle (for reloads and readiness checks).
    pub fn engines(&self) -> &Arc<EngineHandle> {
        &self.engines
    }

    /// Handles one request end to end on the engine serving now (a reload never changes it
    /// mid-request). Quick commands answer directly; LLM answers are deferred at once and then
    /// edited as the model writes. The report goes to the observer, failed or not; a panic is
    /// caught and returned as [`DispatchError::Panicked`].
    pub async fn run_interaction<R: Responder>(
        &self,
        invocation: Invocation,
        responder: &R,
    ) -> Result<InteractionReport, DispatchError> {
        let started = Instant::now();
        let command = command_of(&invocation.request);
        let engine = self.engines.current();
        let result = AssertUnwindSafe(self.handle(&engine, invocation, responder))
            .catch_unwind()
            .await;
        let result = match result {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(error)) => Err(DispatchError::Discord(error)),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| text.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                tracing::error!(command = command.as_str(), panic = %message, "an interaction handler panicked");
                Err(DispatchError::Panicked(message))
            }
        };
        let report = match &result {
            Ok(report) => report.clone(),
            Err(DispatchError::Discord(_)) => {
                InteractionReport::new(command, Outcome::DiscordError)
            }
            Err(DispatchError::Panicked(_)) => InteractionReport::new(command, Outcome::Panicked),
        };
        self.observer.observe(&report, started.elapsed());
        result
    }

    async fn handle<R: Responder>(
        &self,
        engine: &Engine,
        invocation: Invocation,
        responder: &R,
    ) -> Result<InteractionReport, ResponderError> {
        let asker = Asker {
            user_id: invocation.user_id,
            guild_id: invocation.guild_id,
        };
        let conversation = invocation.conversation;
        let report = match invocation.request {
            BotRequest::Ask { question, private } => {
                let ask = Ask {
                    question: &question,
                    private,
                    command: Command::Ask,
                    conversation,
                };
                self.run_ask(engine, &asker, ask, responder).await?
            }
            BotRequest::Mention { question } => {
                let ask = Ask {
                    question: &question,
                    private: false,
                    command: Command::Mention,
                    conversation,
                };
                self.run_ask(engine, &asker, ask, responder).await?
            }
            BotRequest::AutoAnswer { question } => {
                let ask = Ask {
                    question: &question,
                    private: false,
                    command: Command::AutoAnswer,
                    conversation,
                };
                self.run_ask(engine, &asker, ask, responder).await?
            }
            BotRequest::Autocomplete {
                command,
                option,
                partial,
            } => {
                let choices = autocomplete(engine, &command, &option, &partial);
                responder.respond(Reply::Choices(choices)).await?;
                InteractionReport::new(Command::named(&command), Outcome::Autocomplete)
            }
            BotRequest::Feedback {
                helpful,
                answer_key,
            } => {
                // Queued for the writer: the acknowledgement never waits for the database.
                if let Some(storage) = &self.store {
                    storage.enqueue(Write::Feedback(FeedbackRecord {
                        at_unix: now_unix(),
                        user_hash: hash_id(&self.settings.id_salt, asker.user_id),
                        answer_key: answer_key.clone(),
                        helpful,
                    }));
                }
                let text = if helpful {
                    "Thanks! Glad it helped."
                } else {
                    "Thanks for telling us. Unhelpful answers go to the maintainers to improve the guides and the bot."
                };
                responder
                    .respond(Reply::Message(render::render_notice(text, true)))
                    .await?;
                let outcome = if helpful {
                    Outcome::Helpful
                } else {
                    Outcome::NotHelpful
                };
                if let Some(guild) = asker.guild_id {
                    self.stats.record(guild, StatsEvent::Feedback { helpful });
                }
                let mut report = InteractionReport::new(Command::Feedback, outcome);
                report.answer_key = Some(answer_key);
                return Ok(report);
            }
            BotRequest::Escalate { answer_key } => {
                let (Some(role), Some(guild)) = (self.settings.helper_role_id, asker.guild_id)
                else {
                    let notice = render::render_notice(
                        "No helper role is set up here; ask in the channel.",
                        true,
                    );
                    responder.respond(Reply::Message(notice)).await?;
                    return Ok(InteractionReport::new(Command::Escalate, Outcome::Invalid));
                };
                responder
                    .respond(render::render_escalation(role, asker.user_id))
                    .await?;
                self.stats.record(guild, StatsEvent::Escalation);
                // Queued like feedback: `/guidebot stats` counts hand-offs from the shared store.
                if let Some(storage) = &self.store {
                    let salt = &self.settings.id_salt;
                    storage.enqueue(Write::Escalation(EscalationRecord {
                        at_unix: now_unix(),
                        user_hash: hash_id(salt, asker.user_id),
                        guild_hash: hash_id(salt, guild),
                        answer_key: answer_key.clone(),
                    }));
                }
                tracing::info!(
                    answer_key = %answer_key,
                    "a member asked for a helper; the helper role was pinged"
                );
                let mut report = InteractionReport::new(Command::Escalate, Outcome::Escalated);
                report.answer_key = Some(answer_key);
                return Ok(report);
            }
            BotRequest::Admin {
                action,
                manage_server,
            } => {
                let place = (asker.guild_id, invocation.channel_id);
                return self
                    .run_admin(action, manage_server, place, responder)
                    .await;
            }
            other => {
                let (rendered, report) = quick_reply(engine, other);
                responder.respond(Reply::Message(rendered)).await?;
                report
            }
        };
        if matches!(
            report.command,
            Command::Ask | Command::Mention | Command::AutoAnswer | Command::Search
        ) {
            self.record_question(engine, &asker, &report);
            if let Some(guild) = asker.guild_id {
                let refused_question = (report.outcome == Outcome::Refused)
                    .then(|| report.question.clone())
                    .flatten();
                self.stats
                    .record(guild, StatsEvent::Question { refused_question });
            }
        }
        Ok(report)
    }

    /// `/guidebot`: refused without Manage Server (checked again here: Discord only hides the
    /// command), then reload, stats or the channel's mode. Every reply is ephemeral.
    async fn run_admin<R: Responder>(
        &self,
        action: AdminAction,
        manage_server: bool,
        (guild, channel): (Option<u64>, Option<u64>),
        responder: &R,
    ) -> Result<InteractionReport, ResponderError> {
        let notice = |text: &str| Reply::Message(render::render_notice(text, true));
        let (Some(guild), Some(channel)) = (guild, channel) else {
            responder
                .respond(notice("`/guidebot` works in a server only."))
                .await?;
            return Ok(InteractionReport::new(Command::Admin, Outcome::Invalid));
        };
        if !manage_server {
            responder
                .respond(notice(
                    "Only members with the Manage Server permission can use `/guidebot`.",
                ))
                .await?;
            return Ok(InteractionReport::new(Command::Admin, Outcome::Forbidden));
        }
        let (text, outcome) = match action {
            AdminAction::Reload => {
                let Some(trigger) = &self.reload else {
                    responder
                        .respond(notice("Live reload is not running in this process."))
                        .await?;
                    return Ok(InteractionReport::new(Command::Admin, Outcome::Invalid));
                };
                // A rebuild can take longer than Discord's 3 seconds: acknowledge first.
                responder
                    .respond(Reply::Deferred { ephemeral: true })
                    .await?;
                let text = match trigger.request().await {
                    Ok(report) => format!(
                        "Reloaded in {:.0} ms: {} guide(s), {} passages, index {} ({}).",
                        report.elapsed_ms,
                        report.guides,
                        report.passages,
                        report.fingerprint.chars().take(12).collect::<String>(),
                        if report.changed {
                            "the guides changed"
                        } else {
                            "no change"
                        }
                    ),
                    Err(error) => {
                        format!("Reload failed; the previous index keeps serving. {error}")
                    }
                };
                responder.edit(render::render_notice(&text, true)).await?;
                let mut report = InteractionReport::new(Command::Admin, Outcome::Answered);
                report.deferred = true;
                return Ok(report);
            }
            AdminAction::Stats => (self.stats_text(guild).await, Outcome::Answered),
            AdminAction::Channel { mode: None } => (
                format!(
                    "Unknown mode. Choose one of: {}.",
                    super::admin::ChannelMode::ALL
                        .iter()
                        .map(|mode| mode.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Outcome::Invalid,
            ),
            AdminAction::Channel { mode: Some(mode) } => {
                match self.channels.set_mode(guild, channel, mode).await {
                    Ok(()) => (
                        format!(
                            "This channel is now **{}**: {}.",
                            mode.as_str(),
                            mode.describe()
                        ),
                        Outcome::Answered,
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "could not save the channel mode");
                        (
                            format!("The mode could not be saved: {error}"),
                            Outcome::Invalid,
                        )
                    }
                }
            }
        };
        responder.respond(notice(&text)).await?;
        Ok(InteractionReport::new(Command::Admin, outcome))
    }

    /// `/guidebot stats` for one server: questions, feedback and hand-offs from the store every
    /// replica writes to (this process's counters without one), and today's LLM use against the
    /// server's budget when a store keeps it.
    async fn stats_text(&self, guild: u64) -> String {
        let guild_hash = hash_id(&self.settings.id_salt, guild);
        // With a store, questions, feedback and hand-offs come from the database every replica
        // writes to; without one (or when it cannot answer), from this process's counters.
        let stored = match &self.store {
            Some(storage) => storage
                .store()
                .guild_stats(&guild_hash, STATS_DAYS, now_unix())
                .await
                .map_err(|error| tracing::warn!(%error, "could not read server stats"))
                .ok(),
            None => None,
        };
        let (heading, hand_offs, stats) = match stored {
            Some(stored) => (
                format!("This server, last {STATS_DAYS} days"),
                "Hand-offs to helpers",
                ServerStats {
                    questions: stored.questions,
                    refused: stored.refused,
                    helpful: stored.helpful,
                    not_helpful: stored.not_helpful,
                    escalations: stored.escalations,
                    top_unanswered: stored.top_unanswered,
                },
            ),
            None => (
                "This server since the bot started".to_string(),
                "Hand-offs to helpers (this process)",
                self.stats.of(guild, 5),
            ),
        };
        let refusal_rate = if stats.questions == 0 {
            0.0
        } else {
            100.0 * stats.refused as f64 / stats.questions as f64
        };
        let mut text = format!(
            "**{heading}**\nQuestions: {}\nRefused: {} ({refusal_rate:.0}%)\nFeedback: {} 👍 / {} 👎\n{hand_offs}: {}",
            stats.questions, stats.refused, stats.helpful, stats.not_helpful, stats.escalations
        );
        let scope = BudgetScope::Guild(guild_hash);
        let today = day_of(now_unix());
        let usage = match &self.store {
            Some(storage) => storage.store().usage(&scope, &today).await.ok(),
            None => None,
        };
        if let Some(usage) = usage {
            let budget = &self.settings.budgets;
            let limit =
                |value: Option<u64>| value.map_or("no limit".to_string(), |v| v.to_string());
            text.push_str(&format!(
                "\nLLM answers today: {} (budget {}); tokens: {} (budget {})",
                usage.requests,
                limit(budget.guild_requests_per_day),
                usage.tokens,
                limit(budget.guild_tokens_per_day)
            ));
        }
        if stats.top_unanswered.is_empty() {
            text.push_str("\nNo unanswered questions.");
        } else {
            text.push_str("\n**Top unanswered**");
            for (question, count) in &stats.top_unanswered {
                text.push_str(&format!(
                    "\n{count}× {}",
                    crate::util::text::truncate(question, 120)
                ));
            }
        }
        text
    }
    /// Stores a question for analytics (hashed ids only); failures are logged, never raised.
    fn record_question(&self, engine: &Engine, asker: &Asker, report: &InteractionReport) {
        let (Some(question), Some(storage)) = (&report.question, &self.store) else {
            return;
        };
        let salt = &self.settings.id_salt;
        let record = QuestionRecord {
            at_unix: now_unix(),
            user_hash: hash_id(salt, asker.user_id),
            guild_hash: asker.guild_id.map(|id| hash_id(salt, id)),
            command: report.command.as_str().to_string(),
            question: question.clone(),
            refused: report.outcome == Outcome::Refused,
            mode: report.mode.map_or("none", |mode| mode.as_str()).to_string(),
            top_coverage: report.top_coverage,
            answer_key: report.answer_key.clone(),
            citations: report.citations.clone(),
            fingerprint: engine.fingerprint().to_string(),
        };
        storage.enqueue(Write::Question(record));
    }

    /// Whether this user may get an LLM answer now (daily budgets, then cooldown); charges the
    /// request and starts the cooldown when allowed. With a store both live in the database, so
    /// they hold across replicas; a store that cannot be reached refuses the LLM answer while
    /// budgets are configured (fail closed) and falls back to this process's cooldown otherwise.
    async fn llm_permission(&self, engine: &Engine, asker: &Asker) -> LlmPermission {
        if !engine.has_llm() {
            return LlmPermission::Allowed;
        }
        let scopes = self.budget_scopes(asker);
        let Some(storage) = &self.store else {
            if !scopes.is_empty() {
                // Budgets are configured but there is no store to count against (it could not
                // be opened): LLM answers are refused rather than spent without limits.
                return LlmPermission::Denied(FallbackReason::StoreUnavailable);
            }
            return self.local_cooldown(asker);
        };
        let cooldown = &self.settings.llm_cooldown;
        if scopes.is_empty() && cooldown.is_zero() {
            return LlmPermission::Allowed;
        }
        let claim = LlmClaim {
            day: day_of(now_unix()),
            cooldown: (!cooldown.is_zero()).then(|| Cooldown {
                user_hash: hash_id(&self.settings.id_salt, asker.user_id),
                now_millis: now_millis(),
                length: *cooldown,
            }),
            scopes,
        };
        match storage.claim_llm(&claim).await {
            Ok(ClaimOutcome::Allowed) => LlmPermission::Allowed,
            Ok(ClaimOutcome::OverBudget) => LlmPermission::Denied(FallbackReason::OverBudget),
            Ok(ClaimOutcome::Throttled) => LlmPermission::Denied(FallbackReason::Throttled),
            Err(error) if claim.scopes.is_empty() => {
                tracing::warn!(%error, "could not reach the store for the cooldown; using this process's");
                self.local_cooldown(asker)
            }
            Err(error) => {
                tracing::warn!(%error, "budgets cannot be checked: LLM answers refused until the store answers");
                LlmPermission::Denied(FallbackReason::StoreUnavailable)
            }
        }
    }

    /// The cooldown kept in this process (no store, or the store unreachable without budgets).
    fn local_cooldown(&self, asker: &Asker) -> LlmPermission {
        let now = Instant::now();
        let Ok(mut last) = self.last_llm_answer.lock() else {
            return LlmPermission::Allowed;
        };
        if let Some(previous) = last.get(&asker.user_id) {
            if now.duration_since(*previous) < self.settings.llm_cooldown {
                return LlmPermission::Denied(FallbackReason::Throttled);
            }
        }
        last.insert(asker.user_id, now);
        if last.len() > 100_000 {
            let cooldown = self.settings.llm_cooldown;
            last.retain(|_, at| now.duration_since(*at) < cooldown);
        }
        LlmPermission::Allowed
    }

    /// The scopes with a limit: the user's, then the guild's (always in this order, so
    /// concurrent claims lock rows in one order).
    fn budget_scopes(&self, asker: &Asker) -> Vec<ScopeLimit> {
        let (budgets, salt) = (&self.settings.budgets, &self.settings.id_salt);
        let mut scopes = vec![ScopeLimit {
            scope: BudgetScope::User(hash_id(salt, asker.user_id)),
            requests_per_day: budgets.user_requests_per_day,
            tokens_per_day: budgets.user_tokens_per_day,
        }];
        if let Some(guild) = asker.guild_id {
            scopes.push(ScopeLimit {
                scope: BudgetScope::Guild(hash_id(salt, guild)),
                requests_per_day: budgets.guild_requests_per_day,
                tokens_per_day: budgets.guild_tokens_per_day,
            });
        }
        scopes.retain(|limit| limit.requests_per_day.is_some() || limit.tokens_per_day.is_some());
        scopes
    }

    /// Adds an answer's tokens to the budgets (the request was counted by the claim). Written
    /// before the next question from this user can be claimed, not queued: the answer is already
    /// shown, and a token budget must see it. A failed write is queued, so it is retried.
    async fn charge_tokens(&self, asker: &Asker, answer: &Answer) {
        let (Some(usage), Some(storage)) = (answer.usage, &self.store) else {
            return;
        };
        let scopes: Vec<BudgetScope> = self
            .budget_scopes(asker)
            .into_iter()
            .map(|limit| limit.scope)
            .collect();
        if scopes.is_empty() {
            return;
        }
        let write = Write::Tokens {
            scopes,
            day: day_of(now_unix()),
            tokens: usage.input_tokens + usage.output_tokens,
        };
        if let Err(error) = storage
            .store()
            .write_batch(std::slice::from_ref(&write))
            .await
        {
            tracing::warn!(%error, "could not record LLM tokens now; queued for a retry");
            storage.enqueue(write);
        }
    }

    async fn cached(&self, engine: &Engine, key: &str) -> Option<Answer> {
        let ttl = self.settings.answer_cache_ttl;
        let storage = self.store.as_ref()?;
        if ttl.is_zero() || !engine.has_llm() {
            return None;
        }
        match storage.cached_answer(key, ttl, now_unix()).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, "answer cache unreadable");
                None
            }
        }
    }

    /// Whether answers to this asker carry "Still need help?" (a helper role is set; in a server).
    fn offers_help(&self, asker: &Asker) -> bool {
        self.settings.helper_role_id.is_some() && asker.guild_id.is_some()
    }

    /// The conversation so far (empty without one, or when history is unavailable: the
    /// question is then answered on its own).
    async fn history_of(&self, conversation: Option<ConversationKey>) -> Vec<PriorTurn> {
        let Some(key) = conversation else {
            return Vec::new();
        };
        match self.history.recent(key, now_unix()).await {
            Ok(turns) => turns,
            Err(error) => {
                tracing::warn!(%error, "answering without the conversation's history");
                Vec::new()
            }
        }
    }

    /// Adds the answered question to its conversation (refusals too: a follow-up may rephrase).
    async fn remember(
        &self,
        engine: &Engine,
        conversation: Option<ConversationKey>,
        history: &[PriorTurn],
        answer: &Answer,
    ) {
        let Some(key) = conversation else {
            return;
        };
        let turn = PriorTurn {
            question: answer.question.clone(),
            standalone: engine.standalone_query(&answer.question, history),
            answer: answer.answer.clone(),
        };
        if let Err(error) = self.history.record(key, turn, now_unix()).await {
            tracing::warn!(%error, "could not record the conversation turn");
        }
    }

    async fn run_ask<R: Responder>(
        &self,
        engine: &Engine,
        asker: &Asker,
        ask: Ask<'_>,
        responder: &R,
    ) -> Result<InteractionReport, ResponderError> {
        let Ask {
            question,
            private,
            command,
            conversation,
        } = ask;
        // An auto-answer stays silent rather than refusing: nobody asked the bot.
        let quiet = command == Command::AutoAnswer;
        let history = self.history_of(conversation).await;
        let follow_up = !history.is_empty();
        let key = answer_key(question, engine.fingerprint());
        // A follow-up's answer depends on what came before: never served from or put in the cache.
        let cached = if follow_up {
            None
        } else {
            self.cached(engine, &key).await
        };
        if let Some(answer) = cached {
            tracing::info!(
                cached = true,
                "answer served from the cache without an LLM call"
            );
            // Remembered before it is shown, so a quick follow-up already finds it.
            self.remember(engine, conversation, &history, &answer).await;
            let rendered = render::render_answer(
                &answer,
                &answer_frame(engine, &answer, private, self.offers_help(asker)),
            );
            responder.respond(Reply::Message(rendered)).await?;
            let mut report = answer_report(command, &answer, false);
            report.cached = true;
            report.answer_key = Some(key);
            return Ok(report);
        }
        // Budgets and the cooldown are charged only for a question the LLM would be asked: a
        // refusal never calls it, so it is answered at once and spends nothing. (An empty
        // question goes on to the extractive path, which says what to type.)
        let asks_llm = engine.would_call_llm(question, &history).unwrap_or(false);
        let permission = if asks_llm {
            self.llm_permission(engine, asker).await
        } else {
            LlmPermission::Allowed
        };
        let llm_allowed = asks_llm && permission == LlmPermission::Allowed;
        let options = AnswerOptions {
            llm: permission,
            history: history.clone(),
        };
        if !llm_allowed {
            // Extractive (or throttled) answers take milliseconds: answer in the response itself.
            let answer = match engine.answer_events(question, &options) {
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
                let notice = render::render_notice(&SearchError::EmptyQuery.to_string(), true);
                responder.respond(Reply::Message(notice)).await?;
                return Ok(InteractionReport::new(command, Outcome::Invalid));
            };
            let mut report = answer_report(command, &answer, false);
            report.answer_key = Some(key);
            report.follow_up = follow_up;
            if quiet && answer.refused {
                return Ok(report);
            }
            self.remember(engine, conversation, &history, &answer).await;
            let rendered = render::render_answer(
                &answer,
                &answer_frame(engine, &answer, private, self.offers_help(asker)),
            );
            responder.respond(Reply::Message(rendered)).await?;
            return Ok(report);
        }

        // LLM answers: acknowledge now, then edit as the stream grows.
        responder
            .respond(Reply::Deferred { ephemeral: private })
            .await?;
        let mut report = InteractionReport::new(command, Outcome::Answered);
        report.deferred = true;
        report.follow_up = follow_up;
        let mut events = match engine.answer_events(question, &options) {
            Ok(events) => events,
            Err(error) => {
                responder
                    .edit(render::render_notice(&error.to_string(), private))
                    .await?;
                report.outcome = Outcome::Invalid;
                return Ok(report);
            }
        };
        let mut last_edit: Option<Instant> = None;
        let mut edits = 0usize;
        while let Some(event) = events.next().await {
            match event {
                AnswerEvent::Partial(text) => {
                    let due = responder.streams()
                        && last_edit.is_none_or(|at| at.elapsed() >= self.settings.edit_interval);
                    if due {
                        // A failed intermediate edit is not fatal: the final edit carries the answer.
                        match responder
                            .edit(render::render_partial(question, &text, private))
                            .await
                        {
                            Ok(()) => edits += 1,
                            Err(error) => tracing::warn!(%error, "streaming edit failed"),
                        }
                        last_edit = Some(Instant::now());
                    }
                }
                AnswerEvent::Final(answer) => {
                    if quiet && answer.refused {
                        return Ok(answer_report(command, &answer, true));
                    }
                    self.remember(engine, conversation, &history, &answer).await;
                    let rendered = render::render_answer(
                        &answer,
                        &answer_frame(engine, &answer, private, self.offers_help(asker)),
                    );
                    let sent = responder.edit(rendered).await;
                    self.charge_tokens(asker, &answer).await;
                    let cacheable = !follow_up
                        && answer.fallback.is_none()
                        && !answer.refused
                        && answer.usage.is_some();
                    if cacheable {
                        if let Some(storage) = &self.store {
                            storage.put_cached_answer(&key, &answer, now_unix());
                        }
                    }
                    sent?;
                    let mut final_report = answer_report(command, &answer, true);
                    final_report.edits = edits + 1;
                    final_report.answer_key = Some(key);
                    final_report.follow_up = follow_up;
                    return Ok(final_report);
                }
            }
        }
        // The stream always ends with Final; if it did not, fall back to the extractive answer.
        let (rendered, mut fallback_report) = extractive_reply(engine, question, private, command);
        responder.edit(rendered).await?;
        fallback_report.deferred = true;
        fallback_report.edits = edits + 1;
        Ok(fallback_report)
    }
}

/// One question to answer and where it was asked.
struct Ask<'a> {
    question: &'a str,
    private: bool,
    command: Command,
    conversation: Option<ConversationKey>,
}

/// The command a request runs, known before it runs (for the report of a failure).
fn command_of(request: &BotRequest) -> Command {
    match request {
        BotRequest::Ask { .. } => Command::Ask,
        BotRequest::Mention { .. } => Command::Mention,
        BotRequest::AutoAnswer { .. } => Command::AutoAnswer,
        BotRequest::Search { .. } => Command::Search,
        BotRequest::Comp { .. } => Command::Comp,
        BotRequest::Source { .. } => Command::Source,
        BotRequest::About => Command::About,
        BotRequest::Autocomplete { command, .. } => Command::named(command),
        BotRequest::Feedback { .. } => Command::Feedback,
        BotRequest::Admin { .. } => Command::Admin,
        BotRequest::Escalate { .. } => Command::Escalate,
        BotRequest::Unknown { .. } => Command::Unknown,
    }
}

/// Replies that need no LLM and no waiting: search, comp, source, about, unknown.
fn quick_reply(engine: &Engine, request: BotRequest) -> (Rendered, InteractionReport) {
    match request {
        BotRequest::Search { query } => match engine.search(&query, &SearchOptions { limit: 5 }) {
            Ok(results) => {
                let outcome = if results.relevant {
                    Outcome::Answered
                } else {
                    Outcome::Refused
                };
                let mut report = InteractionReport::new(Command::Search, outcome);
                report.top_coverage = Some(results.coverage);
                report.question = Some(query);
                (render::render_search(&results), report)
            }
            Err(error) => (
                render::render_notice(&error.to_string(), true),
                InteractionReport::new(Command::Search, Outcome::Invalid),
            ),
        },
        BotRequest::Comp {
            company,
            level,
            compare,
        } => {
            let mut companies = vec![company];
            companies.extend(compare);
            companies.retain(|name| !name.trim().is_empty());
            if companies.is_empty() {
                return (
                    render::render_notice("Name a company, e.g. `/comp company: Google`.", true),
                    InteractionReport::new(Command::Comp, Outcome::Invalid),
                );
            }
            let asked = companies.join(" vs ");
            let lookup = engine.comp(&CompQuery {
                companies,
                level,
                role: None,
            });
            let outcome = if lookup.rows.is_empty() {
                Outcome::NotFound
            } else {
                Outcome::Answered
            };
            (
                render::render_comp(&lookup, &asked),
                InteractionReport::new(Command::Comp, outcome),
            )
        }
        BotRequest::Source { section } => match engine.section(&section) {
            Some(view) => (
                render::render_section(&view),
                InteractionReport::new(Command::Source, Outcome::Answered),
            ),
            None => {
                let suggestions: Vec<String> = engine
                    .section_choices(&section)
                    .into_iter()
                    .map(|choice| choice.name)
                    .collect();
                (
                    render::render_no_such_section(&section, &suggestions),
                    InteractionReport::new(Command::Source, Outcome::NotFound),
                )
            }
        },
        BotRequest::About => (
            render::render_about(&engine.about()),
            InteractionReport::new(Command::About, Outcome::Answered),
        ),
        BotRequest::Unknown { name } => (
            render::render_unknown_command(&name),
            InteractionReport::new(Command::Unknown, Outcome::Unknown),
        ),
        BotRequest::Ask { question, .. }
        | BotRequest::Mention { question }
        | BotRequest::AutoAnswer { question } => {
            extractive_reply(engine, &question, false, Command::Ask)
        }
        BotRequest::Autocomplete { command, .. } => (
            render::render_notice("Autocomplete is answered with choices.", true),
            InteractionReport::new(Command::named(&command), Outcome::Invalid),
        ),
        BotRequest::Feedback { .. } => (
            render::render_notice("Thanks for the feedback!", true),
            InteractionReport::new(Command::Feedback, Outcome::Helpful),
        ),
        BotRequest::Admin { .. } => (
            render::render_notice("Administration runs in the dispatcher.", true),
            InteractionReport::new(Command::Admin, Outcome::Invalid),
        ),
        BotRequest::Escalate { .. } => (
            render::render_notice("Hand-offs run in the dispatcher.", true),
            InteractionReport::new(Command::Escalate, Outcome::Invalid),
        ),
    }
}

/// Autocomplete choices for `/comp` and `/source`, fitted to Discord's limits by the renderer.
fn autocomplete(
    engine: &Engine,
    command: &str,
    option: &str,
    partial: &str,
) -> Vec<(String, String)> {
    match (command, option) {
        ("comp", "company") | ("comp", "compare") => render::fit_choices(
            engine
                .comp_choices(partial)
                .into_iter()
                .map(|choice| (choice.name, choice.value)),
        ),
        ("source", "section") => render::fit_choices(
            engine
                .section_choices(partial)
                .into_iter()
                .map(|choice| (choice.name, choice.value)),
        ),
        _ => Vec::new(),
    }
}

fn answer_frame(
    engine: &Engine,
    answer: &Answer,
    ephemeral: bool,
    offer_help: bool,
) -> AnswerFrame {
    let about = engine.about();
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
        feedback_key: Some(answer_key(&answer.question, engine.fingerprint())),
        ephemeral,
        offer_help,
    }
}

fn extractive_reply(
    engine: &Engine,
    question: &str,
    ephemeral: bool,
    command: Command,
) -> (Rendered, InteractionReport) {
    match engine.answer_extractive(question) {
        Ok(answer) => {
            let report = answer_report(command, &answer, false);
            (
                render::render_answer(&answer, &answer_frame(engine, &answer, ephemeral, false)),
                report,
            )
        }
        Err(error) => (
            render::render_notice(&error.to_string(), true),
            InteractionReport::new(command, Outcome::Invalid),
        ),
    }
}

/// A stable key for an answer (question + corpus fingerprint), used by the feedback buttons.
pub fn answer_key(question: &str, fingerprint: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(normalize_question(question).as_bytes());
    hasher.update(b"\0");
    hasher.update(fingerprint.as_bytes());
    hex::encode(&hasher.finalize()[..10])
}

fn answer_report(command: Command, answer: &Answer, deferred: bool) -> InteractionReport {
    let outcome = if answer.refused {
        Outcome::Refused
    } else if answer.fallback.is_some() {
        Outcome::Fallback
    } else {
        Outcome::Answered
    };
    let mut report = InteractionReport::new(command, outcome);
    report.deferred = deferred;
    report.mode = Some(answer.mode);
    report.fallback = answer.fallback.clone();
    if let Some(usage) = answer.usage {
        report.input_tokens = usage.input_tokens;
        report.cached_input_tokens = usage.cached_input_tokens;
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
