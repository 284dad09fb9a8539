//! The gateway transport: a serenity client connected to Discord's websocket gateway that feeds
//! slash commands, autocomplete, button presses and mentions to the [`Dispatcher`].
//!
//! What this file owns and the dispatcher does not: the connection (shards, intents, shutdown),
//! command registration on READY, a [`Responder`] over serenity's `Http`, mention replies (typing
//! indicator, reply or thread), and the rule that one failing interaction is logged, answered
//! with a short notice where possible, and never stops the bot.

use crate::bot::commands;
use crate::bot::dispatch::{Dispatcher, InteractionReport, Responder, ResponderError};
use crate::bot::render;
use crate::bot::request::{self, BotRequest, Invocation};
use anyhow::Context as _;
use serenity::all::{
    AutoArchiveDuration, ClientBuilder, Command, Context, CreateAutocompleteResponse,
    CreateInteractionResponse, CreateThread, EditInteractionResponse, EventHandler, GatewayIntents,
    GuildId, Http, HttpBuilder, Interaction, InteractionId, Message, MessageReference, Ready,
};
use serenity::builder::Builder as _;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Where the REST API lives unless `DISCORD_API_BASE` says otherwise.
pub const DEFAULT_API_BASE: &str = "https://discord.com";

/// The bot token (required).
pub const ENV_TOKEN: &str = "DISCORD_TOKEN";
/// Register the commands to this one guild (instant) instead of globally (can take up to an hour).
pub const ENV_GUILD_ID: &str = "DISCORD_GUILD_ID";
/// Base URL of the REST API (a fake Discord in tests, a staging or rate-limiting proxy).
pub const ENV_API_BASE: &str = "DISCORD_API_BASE";
/// Which shards this process runs: `auto`, `2/4` or `0-1/4`.
pub const ENV_SHARDS: &str = "GUIDEBOT_SHARDS";
/// `true` to answer mentions in a new thread started from the question.
pub const ENV_MENTION_THREADS: &str = "GUIDEBOT_MENTION_THREADS";

/// How long shutdown waits for interactions in flight (a streaming LLM answer) to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the shards to close before giving up on them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Discord's limit on thread names.
const THREAD_NAME_LIMIT: usize = 100;
/// What a user sees when their interaction failed on our side.
const FAILURE_NOTICE: &str =
    "Sorry, something went wrong while answering. Please try again in a moment.";

/// The intents guidebot asks for, none of them privileged:
///
/// - `GUILDS`: channel and thread state in serenity's cache (threads for mention replies).
/// - `GUILD_MESSAGES`: `MESSAGE_CREATE` in servers, to see messages that mention the bot.
/// - `DIRECT_MESSAGES`: the same in DMs.
///
/// `MESSAGE_CONTENT` (privileged) is deliberately left out: Discord fills in `content` without it
/// for messages that mention the app and for DMs, which is all guidebot reads. Asking for a
/// privileged intent that is not switched on in the Developer Portal makes Discord close the
/// connection (close code 4014), so it would only add a way to fail. Slash commands need no
/// intent at all: interactions are always delivered.
pub fn default_intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES
}

pub use crate::config::ShardPlan;

/// Everything the gateway transport needs. Built from the environment by
/// [`GatewaySettings::from_env_vars`], or by hand in tests.
#[derive(Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// The bot token. A secret: never logged, masked in `Debug`.
    pub token: String,
    /// Register commands to this guild only (instant updates while developing); `None`: globally.
    pub guild_id: Option<u64>,
    /// Base URL of Discord's REST API; anything but [`DEFAULT_API_BASE`] is used as a proxy.
    pub api_base: String,
    /// Which shards this process runs.
    pub shards: ShardPlan,
    /// Gateway intents; [`default_intents`] unless a caller needs more.
    pub intents: GatewayIntents,
    /// Answer mentions in a new thread started from the question instead of a reply.
    pub mention_replies_in_thread: bool,
}

impl fmt::Debug for GatewaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewaySettings")
            .field("token", &"<redacted>")
            .field("guild_id", &self.guild_id)
            .field("api_base", &self.api_base)
            .field("shards", &self.shards)
            .field("intents", &self.intents)
            .field("mention_replies_in_thread", &self.mention_replies_in_thread)
            .finish()
    }
}

/// A gateway setting is missing or malformed; the message names the variable and the fix.
#[derive(Debug, thiserror::Error)]
pub enum GatewaySettingsError {
    /// A required variable is unset or empty; `hint` says how to obtain a value.
    #[error("{var} is not set: {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    /// A variable has a value that cannot work; `message` says what is expected (never echoing
    /// the token).
    #[error("{var} is invalid: {message}")]
    Invalid { var: &'static str, message: String },
}

impl GatewaySettings {
    /// Settings for `token` with the defaults: global commands, discord.com, automatic sharding,
    /// [`default_intents`], mention replies in the channel.
    pub fn new(token: impl Into<String>) -> Self {
        GatewaySettings {
            token: token.into(),
            guild_id: None,
            api_base: DEFAULT_API_BASE.to_string(),
            shards: ShardPlan::Auto,
            intents: default_intents(),
            mention_replies_in_thread: false,
        }
    }

    /// Reads `DISCORD_TOKEN` (required), `DISCORD_GUILD_ID`, `DISCORD_API_BASE`,
    /// `GUIDEBOT_SHARDS` and `GUIDEBOT_MENTION_THREADS` from `vars` (a map so tests need not touch
    /// the process environment). Empty values count as unset.
    pub fn from_env_vars(vars: &HashMap<String, String>) -> Result<Self, GatewaySettingsError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
        };
        let token = get(ENV_TOKEN).ok_or(GatewaySettingsError::Missing {
            var: ENV_TOKEN,
            hint: "create a bot at https://discord.com/developers/applications and export its token (Bot page, Reset Token)",
        })?;
        // serenity adds the "Bot " prefix itself; any other whitespace means a bad paste. The
        // token is never echoed in the message.
        let bare = token.strip_prefix("Bot ").unwrap_or(token);
        if bare.is_empty() || bare.chars().any(char::is_whitespace) {
            return Err(GatewaySettingsError::Invalid {
                var: ENV_TOKEN,
                message: "it contains spaces or line breaks; paste only the token from the Bot page of your application".to_string(),
            });
        }
        let mut settings = GatewaySettings::new(token);

        if let Some(raw) = get(ENV_GUILD_ID) {
            let id = raw.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                GatewaySettingsError::Invalid {
                    var: ENV_GUILD_ID,
                    message: format!(
                        "{raw:?} must be a number (a server id: enable Developer Mode in Discord, right-click the server, Copy Server ID), or unset it to register commands globally"
                    ),
                }
            })?;
            settings.guild_id = Some(id);
        }

        if let Some(raw) = get(ENV_API_BASE) {
            let base = raw.trim_end_matches('/');
            if !(base.starts_with("http://") || base.starts_with("https://"))
                || base.len() <= "https://".len()
            {
                return Err(GatewaySettingsError::Invalid {
                    var: ENV_API_BASE,
                    message: format!(
                        "{raw:?} must be an http(s) URL without the /api/v10 part, e.g. {DEFAULT_API_BASE} or http://127.0.0.1:8080"
                    ),
                });
            }
            settings.api_base = base.to_string();
        }

        if let Some(raw) = get(ENV_SHARDS) {
            settings.shards =
                ShardPlan::parse(raw).map_err(|message| GatewaySettingsError::Invalid {
                    var: ENV_SHARDS,
                    message,
                })?;
        }

        if let Some(raw) = get(ENV_MENTION_THREADS) {
            settings.mention_replies_in_thread = match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(GatewaySettingsError::Invalid {
                        var: ENV_MENTION_THREADS,
                        message: format!("{raw:?} must be true or false"),
                    })
                }
            };
        }
        Ok(settings)
    }

    /// Whether REST goes to discord.com itself (serenity's own rate limiter on) rather than to
    /// another base URL (proxy mode).
    pub fn uses_discord_directly(&self) -> bool {
        self.api_base.trim_end_matches('/') == DEFAULT_API_BASE
    }

    /// serenity's REST client for these settings.
    ///
    /// Another base URL needs `proxy(..)` *and* `ratelimiter_disabled(true)`: serenity 0.12.5's
    /// rate limiter builds its requests without the proxy, so with it enabled every call still
    /// goes to discord.com. With the limiter off, rate limiting is the proxy's job (a fake Discord
    /// has none to enforce; a production proxy such as twilight-http-proxy does it).
    /// `allowed_mentions` with an empty parse is also the default for every new message.
    fn http(&self) -> Http {
        let mut builder =
            HttpBuilder::new(&self.token).default_allowed_mentions(render::no_pings());
        if !self.uses_discord_directly() {
            builder = builder
                .proxy(self.api_base.trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        builder.build()
    }
}

/// Connects to the gateway and serves until `shutdown` completes (or the shards die).
///
/// On the first READY the slash commands are registered (to `guild_id` when set, else globally).
/// Every interaction and mention is handled in its own task, so a slow LLM answer never blocks a
/// shard and one failure never stops the bot. When `shutdown` completes, all shards are closed,
/// interactions in flight get a few seconds to finish, and `Ok(())` is returned.
///
/// Errors: the client cannot be built, or the shards cannot connect or were all closed by
/// Discord (a wrong token, an intent not enabled in the Developer Portal).
pub async fn run(
    settings: GatewaySettings,
    dispatcher: Arc<Dispatcher>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let in_flight = InFlight::default();
    let handler = Handler {
        dispatcher,
        guild_id: settings.guild_id.map(GuildId::new),
        mention_replies_in_thread: settings.mention_replies_in_thread,
        registered: AtomicBool::new(false),
        in_flight: in_flight.clone(),
    };
    tracing::info!(
        api_base = %settings.api_base,
        shards = ?settings.shards,
        intents = ?settings.intents,
        guild_commands = settings.guild_id.is_some(),
        "starting the Discord gateway client"
    );
    let mut client = ClientBuilder::new_with_http(settings.http(), settings.intents)
        .event_handler(handler)
        .await
        .context("cannot build the Discord client")?;
    let shard_manager = Arc::clone(&client.shard_manager);

    let started = async {
        match settings.shards {
            ShardPlan::Auto => client.start_autosharded().await,
            // serenity's `start_shard_range` treats the range's end as inclusive.
            ShardPlan::Range { first, last, total } => {
                client.start_shard_range(first..last, total).await
            }
        }
    };
    tokio::pin!(started);

    let outcome = tokio::select! {
        result = &mut started => result.context(
            "the Discord gateway stopped: check DISCORD_TOKEN, that the bot's intents are allowed in the Developer Portal, and the log above",
        ),
        () = shutdown => {
            tracing::info!("shutdown requested: closing the shards");
            let deadline = tokio::time::Instant::now() + SHUTDOWN_TIMEOUT;
            // `shutdown_all` does nothing while the shards are still being booted, so repeat it
            // until the client reports that it stopped.
            loop {
                shard_manager.shutdown_all().await;
                let wait = tokio::time::Instant::now() + Duration::from_millis(500);
                match tokio::time::timeout_at(wait.min(deadline), &mut started).await {
                    Ok(result) => break result.context("the Discord gateway failed while shutting down"),
                    Err(_) if tokio::time::Instant::now() >= deadline => {
                        tracing::warn!("the shards did not report their shutdown in time; exiting anyway");
                        break Ok(());
                    }
                    Err(_) => continue,
                }
            }
        }
    };
    in_flight.drain(DRAIN_TIMEOUT).await;
    tracing::info!("Discord gateway client stopped");
    outcome
}

/// Counts handler tasks in flight so shutdown can let them finish.
#[derive(Clone)]
struct InFlight(Arc<watch::Sender<usize>>);

impl Default for InFlight {
    fn default() -> Self {
        InFlight(Arc::new(watch::channel(0).0))
    }
}

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        self.0.send_modify(|count| *count += 1);
        InFlightGuard(Arc::clone(&self.0))
    }

    async fn drain(&self, timeout: Duration) {
        let mut count = self.0.subscribe();
        let pending = *count.borrow();
        if pending == 0 {
            return;
        }
        tracing::info!(pending, "waiting for interactions in flight");
        if tokio::time::timeout(timeout, count.wait_for(|count| *count == 0))
            .await
            .is_err()
        {
            tracing::warn!(
                pending = *count.borrow(),
                "interactions still in flight at shutdown were abandoned"
            );
        }
    }
}

struct InFlightGuard(Arc<watch::Sender<usize>>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.send_modify(|count| *count = count.saturating_sub(1));
    }
}

/// Answers one interaction through serenity's REST client: the callback, then edits of the
/// original response. Remembers whether the callback went through, so a failure later on can be
/// reported by editing instead of responding twice.
struct GatewayResponder {
    http: Arc<Http>,
    id: InteractionId,
    token: String,
    responded: AtomicBool,
}

impl GatewayResponder {
    fn new(http: Arc<Http>, id: InteractionId, token: &str) -> Self {
        GatewayResponder {
            http,
            id,
            token: token.to_string(),
            responded: AtomicBool::new(false),
        }
    }

    fn responded(&self) -> bool {
        self.responded.load(Ordering::SeqCst)
    }

    /// A serenity error as text without the interaction token (it is part of the URL, and with
    /// it anyone could post as the bot in that interaction for 15 minutes).
    fn error(&self, call: &str, error: serenity::Error) -> ResponderError {
        let status = match &error {
            serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(response)) => {
                format!(
                    " (HTTP {}, code {})",
                    response.status_code, response.error.code
                )
            }
            _ => String::new(),
        };
        let text = format!("{call}{status}: {error}").replace(&self.token, "<token>");
        ResponderError(text)
    }
}

impl Responder for GatewayResponder {
    async fn respond(&self, response: CreateInteractionResponse) -> Result<(), ResponderError> {
        response
            .execute(&*self.http, (self.id, &self.token))
            .await
            .map_err(|error| self.error("interaction callback", error))?;
        self.responded.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn edit(&self, edit: EditInteractionResponse) -> Result<(), ResponderError> {
        edit.execute(&*self.http, &self.token)
            .await
            .map(|_| ())
            .map_err(|error| self.error("edit of the original response", error))
    }
}

/// serenity's event handler: translates events into dispatcher calls and keeps failures local.
struct Handler {
    dispatcher: Arc<Dispatcher>,
    guild_id: Option<GuildId>,
    mention_replies_in_thread: bool,
    /// Commands are registered on the first READY of this process only (READY comes again after
    /// every re-identify and once per shard).
    registered: AtomicBool,
    in_flight: InFlight,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        tracing::info!(
            shard = ?ready.shard.map(|shard| (shard.id.0, shard.total)),
            guilds = ready.guilds.len(),
            "connected to the Discord gateway"
        );
        if self.registered.swap(true, Ordering::SeqCst) {
            return;
        }
        let commands = commands::slash_commands();
        let (scope, result) = match self.guild_id {
            Some(guild) => ("guild", guild.set_commands(&ctx.http, commands).await),
            None => (
                "global",
                Command::set_global_commands(&ctx.http, commands).await,
            ),
        };
        match result {
            Ok(registered) => {
                tracing::info!(
                    scope,
                    commands = registered.len(),
                    "slash commands registered"
                )
            }
            Err(error) => {
                // Try again on the next READY; the bot still answers commands registered earlier.
                self.registered.store(false, Ordering::SeqCst);
                tracing::error!(scope, %error, "registering the slash commands failed");
            }
        }
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let (invocation, id, token, autocomplete) = match &interaction {
            Interaction::Command(command) => (
                request::from_command(command),
                command.id,
                &command.token,
                false,
            ),
            Interaction::Autocomplete(command) => (
                request::from_command(command),
                command.id,
                &command.token,
                true,
            ),
            Interaction::Component(component) => (
                request::from_component(component),
                component.id,
                &component.token,
                false,
            ),
            other => {
                tracing::debug!(kind = ?other.kind(), "ignoring an interaction guidebot does not use");
                return;
            }
        };
        let responder = Arc::new(GatewayResponder::new(Arc::clone(&ctx.http), id, token));
        self.spawn_interaction(invocation, responder, autocomplete);
    }

    async fn message(&self, ctx: Context, message: Message) {
        let bot_id = ctx.cache.current_user().id;
        let Some(invocation) = request::from_mention(&message, bot_id) else {
            return;
        };
        let BotRequest::Mention { question } = invocation.request else {
            return;
        };
        let guard = self.in_flight.enter();
        let dispatcher = Arc::clone(&self.dispatcher);
        let in_thread = self.mention_replies_in_thread;
        let http = Arc::clone(&ctx.http);
        let message_id = message.id;
        let work = tokio::spawn(async move {
            answer_mention(http, dispatcher, message, question, in_thread).await;
        });
        tokio::spawn(async move {
            let _guard = guard;
            if let Err(error) = work.await {
                tracing::error!(message = %message_id, panicked = error.is_panic(), "answering a mention crashed");
            }
        });
    }
}

impl Handler {
    /// Runs the dispatcher in its own task (the shard keeps reading events) and supervises it: a
    /// failure or a panic is logged and, where Discord still allows it, answered with a notice.
    fn spawn_interaction(
        &self,
        invocation: Invocation,
        responder: Arc<GatewayResponder>,
        autocomplete: bool,
    ) {
        let guard = self.in_flight.enter();
        let dispatcher = Arc::clone(&self.dispatcher);
        let task_responder = Arc::clone(&responder);
        let started = Instant::now();
        let work = tokio::spawn(async move {
            dispatcher
                .run_interaction(invocation, &*task_responder)
                .await
        });
        tokio::spawn(async move {
            let _guard = guard;
            let interaction = responder.id;
            match work.await {
                Ok(Ok(report)) => log_report(&report, interaction, started.elapsed()),
                Ok(Err(error)) => {
                    tracing::warn!(%interaction, %error, "answering an interaction failed");
                    tell_user_it_failed(&responder, autocomplete).await;
                }
                Err(error) => {
                    tracing::error!(%interaction, panicked = error.is_panic(), "an interaction handler crashed");
                    tell_user_it_failed(&responder, autocomplete).await;
                }
            }
        });
    }
}

/// One line per interaction at info level: what ran and how it went, never the question.
fn log_report(report: &InteractionReport, interaction: InteractionId, elapsed: Duration) {
    tracing::info!(
        %interaction,
        command = report.command,
        outcome = report.outcome,
        deferred = report.deferred,
        mode = report.mode.unwrap_or("-"),
        fallback = report.fallback.unwrap_or("-"),
        edits = report.edits,
        elapsed_ms = elapsed.as_millis() as u64,
        "interaction answered"
    );
    tracing::debug!(%interaction, question = ?report.question, "interaction question");
}

/// Best effort: an ephemeral notice as the response, or as an edit when the callback already
/// went through. Autocomplete can only take choices, so it gets an empty list.
async fn tell_user_it_failed(responder: &GatewayResponder, autocomplete: bool) {
    let result = if autocomplete {
        if responder.responded() {
            return;
        }
        responder
            .respond(CreateInteractionResponse::Autocomplete(
                CreateAutocompleteResponse::new(),
            ))
            .await
    } else if responder.responded() {
        responder
            .edit(render::render_notice(FAILURE_NOTICE, true).to_edit())
            .await
    } else {
        responder
            .respond(render::render_notice(FAILURE_NOTICE, true).to_interaction_response())
            .await
    };
    if let Err(error) = result {
        tracing::warn!(interaction = %responder.id, %error, "could not tell the user the interaction failed");
    }
}

/// Answers a message that mentioned the bot: in a new thread when configured (and possible),
/// else as a reply in the channel; typing shows while the answer is written.
async fn answer_mention(
    http: Arc<Http>,
    dispatcher: Arc<Dispatcher>,
    message: Message,
    question: String,
    in_thread: bool,
) {
    let started = Instant::now();
    let mut target = message.channel_id;
    if in_thread && message.guild_id.is_some() {
        let thread = CreateThread::new(thread_name(&question))
            .auto_archive_duration(AutoArchiveDuration::OneDay);
        match message
            .channel_id
            .create_thread_from_message(&*http, message.id, thread)
            .await
        {
            Ok(thread) => target = thread.id,
            // E.g. the question was asked inside a thread already, or permissions are missing.
            Err(error) => {
                tracing::warn!(%error, "could not open a thread; replying in the channel")
            }
        }
    }
    let typing = target.start_typing(&http);
    // Bind to the engine serving now so a reload cannot change it mid-answer.
    let dispatcher = dispatcher.snapshot();
    let (rendered, report) = dispatcher
        .answer_mention(message.author.id.get(), &question)
        .await;
    let mut reply = rendered.to_channel_message();
    if target == message.channel_id {
        let mut reference = MessageReference::from(&message);
        // The question may be deleted meanwhile: still post the answer.
        reference.fail_if_not_exists = Some(false);
        reply = reply.reference_message(reference);
    }
    let sent = target.send_message(&*http, reply).await;
    typing.stop();
    dispatcher.observe(&report, started.elapsed());
    match sent {
        Ok(_) => tracing::info!(
            command = report.command,
            outcome = report.outcome,
            mode = report.mode.unwrap_or("-"),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "mention answered"
        ),
        Err(error) => {
            tracing::warn!(%error, "posting a mention answer failed");
            let notice = render::render_notice(FAILURE_NOTICE, false).to_channel_message();
            if let Err(error) = target.send_message(&*http, notice).await {
                tracing::warn!(%error, "could not tell the user the mention failed");
            }
        }
    }
}

/// A thread name from the question: one line, at most 100 characters, never empty.
fn thread_name(question: &str) -> String {
    let line = question.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = render::truncate(&line, THREAD_NAME_LIMIT);
    if name.is_empty() {
        "guidebot answer".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn token_is_required_and_the_error_says_how_to_get_one() {
        let error = GatewaySettings::from_env_vars(&vars(&[])).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("DISCORD_TOKEN is not set"), "{text}");
        assert!(text.contains("https://discord.com/developers/applications"));
        let error = GatewaySettings::from_env_vars(&vars(&[("DISCORD_TOKEN", "  ")])).unwrap_err();
        assert!(error.to_string().starts_with("DISCORD_TOKEN is not set"));
    }

    #[test]
    fn defaults_and_debug_never_shows_the_token() {
        let settings =
            GatewaySettings::from_env_vars(&vars(&[("DISCORD_TOKEN", "secret-token-123")]))
                .unwrap();
        assert_eq!(settings.api_base, DEFAULT_API_BASE);
        assert!(settings.uses_discord_directly());
        assert_eq!(settings.shards, ShardPlan::Auto);
        assert_eq!(settings.guild_id, None);
        assert_eq!(settings.intents, default_intents());
        assert!(!settings.intents.contains(GatewayIntents::MESSAGE_CONTENT));
        assert!(!settings.mention_replies_in_thread);
        let debug = format!("{settings:?}");
        assert!(!debug.contains("secret-token-123") && debug.contains("<redacted>"));
    }

    #[test]
    fn a_pasted_token_with_spaces_is_rejected_without_echoing_it() {
        let error = GatewaySettings::from_env_vars(&vars(&[("DISCORD_TOKEN", "abc def-secret")]))
            .unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("DISCORD_TOKEN is invalid"), "{text}");
        assert!(!text.contains("def-secret"));
        assert!(GatewaySettings::from_env_vars(&vars(&[("DISCORD_TOKEN", "Bot abc")])).is_ok());
    }

    #[test]
    fn every_setting_is_read_and_checked() {
        let settings = GatewaySettings::from_env_vars(&vars(&[
            ("DISCORD_TOKEN", "t"),
            ("DISCORD_GUILD_ID", "123456789012345678"),
            ("DISCORD_API_BASE", "http://127.0.0.1:9999/"),
            ("GUIDEBOT_SHARDS", "0-1/4"),
            ("GUIDEBOT_MENTION_THREADS", "yes"),
        ]))
        .unwrap();
        assert_eq!(settings.guild_id, Some(123_456_789_012_345_678));
        assert_eq!(settings.api_base, "http://127.0.0.1:9999");
        assert!(!settings.uses_discord_directly());
        assert_eq!(
            settings.shards,
            ShardPlan::Range {
                first: 0,
                last: 1,
                total: 4
            }
        );
        assert!(settings.mention_replies_in_thread);

        let bad = |name: &str, value: &str| {
            let error =
                GatewaySettings::from_env_vars(&vars(&[("DISCORD_TOKEN", "t"), (name, value)]))
                    .unwrap_err()
                    .to_string();
            assert!(error.starts_with(&format!("{name} is invalid")), "{error}");
            error
        };
        assert!(bad("DISCORD_GUILD_ID", "my-server").contains("must be a number"));
        assert!(bad("DISCORD_API_BASE", "discord.com").contains("http(s) URL"));
        assert!(bad("GUIDEBOT_SHARDS", "0-1").contains("0-1/4"));
        bad("GUIDEBOT_SHARDS", "2-1/4");
        bad("GUIDEBOT_SHARDS", "0-4/4");
        bad("GUIDEBOT_SHARDS", "0/0");
        bad("GUIDEBOT_MENTION_THREADS", "maybe");
    }

    #[test]
    fn shard_plans_parse() {
        assert_eq!(ShardPlan::parse("auto"), Ok(ShardPlan::Auto));
        assert_eq!(
            ShardPlan::parse("2/4"),
            Ok(ShardPlan::Range {
                first: 2,
                last: 2,
                total: 4
            })
        );
        assert_eq!(
            ShardPlan::parse(" 0 - 3 / 4 "),
            Ok(ShardPlan::Range {
                first: 0,
                last: 3,
                total: 4
            })
        );
    }

    #[test]
    fn thread_names_fit_discords_limit() {
        let name = thread_name(&"why ".repeat(100));
        assert!(name.chars().count() <= THREAD_NAME_LIMIT);
        assert_eq!(thread_name("a\nb"), "a b");
        assert_eq!(thread_name(""), "guidebot answer");
    }
}
