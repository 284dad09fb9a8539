//! The gateway transport: a serenity client connected to Discord's websocket gateway that feeds
//! slash commands, autocomplete, button presses and mentions to the [`Dispatcher`].
//!
//! What this file owns and the dispatcher does not: the connection (shards, intents, shutdown),
//! command registration on READY, [`Responder`]s over serenity's `Http` (interaction callbacks,
//! and channel replies to mentions, in a thread when configured), and the rule that one failing
//! or panicking handler is logged, answered with a short notice where possible, and never stops
//! the bot. Mentions run through the same `Dispatcher::run_interaction` as slash commands.

use super::InFlight;
use crate::bot::admin::ChannelMode;
use crate::bot::commands;
use crate::bot::conversation::{ConversationHistory, ConversationKey};
use crate::bot::dispatch::{Dispatcher, Responder, ResponderError};
use crate::bot::render::{self, Rendered, Reply};
use crate::bot::report::InteractionReport;
use crate::bot::request::{self, ChannelKind, Invocation, MessageContext, MessageRoute};
use crate::util::clock::now_unix;
use crate::util::secret::Secret;
use anyhow::Context as _;
use serde::Serialize;
use serenity::all::{
    AutoArchiveDuration, ChannelId, ClientBuilder, Context, CreateThread, EventHandler,
    GatewayIntents, GuildId, Http, HttpBuilder, Interaction, InteractionId, Message,
    MessageReference, Ready, UserId,
};
use serenity::builder::Builder as _;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long shutdown waits for interactions in flight (a streaming LLM answer) to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the shards to close before giving up on them.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// What a user sees when their interaction failed on our side.
const FAILURE_NOTICE: &str =
    "Sorry, something went wrong while answering. Please try again in a moment.";

/// The intents guidebot asks for, none of them privileged:
///
/// - `GUILDS`: channel and thread state in serenity's cache (threads for mention replies).
/// - `GUILD_MESSAGES`: `MESSAGE_CREATE` in servers, to see messages that mention the bot.
/// - `DIRECT_MESSAGES`: the same in DMs.
///
/// `MESSAGE_CONTENT` (privileged) is left out by default: Discord fills in `content` without it
/// for messages that mention the app and for DMs, which is all guidebot needs unless follow-ups
/// without a mention should be read ([`GatewaySettings::message_content_intent`]). Asking for a
/// privileged intent that is not switched on in the Developer Portal makes Discord close the
/// connection (close code 4014), so it is opt-in. Slash commands need no intent at all:
/// interactions are always delivered.
pub fn default_intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES
}

/// Which shards this process runs. Discord routes a guild's events to shard
/// `(guild_id >> 22) % total`; several processes (or machines) split the guilds by each running a
/// range of the same `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardPlan {
    /// All shards in this process, as many as Discord recommends (`GET /gateway/bot`).
    Auto,
    /// Shards `first..=last` of `total`.
    Range { first: u32, last: u32, total: u32 },
}

impl ShardPlan {
    /// Parses `auto`, `N/TOTAL` (one shard) or `FIRST-LAST/TOTAL` (inclusive range).
    pub fn parse(text: &str) -> Result<ShardPlan, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ShardPlan::Auto);
        }
        let shape =
            || "use \"auto\", \"2/4\" (shard 2 of 4) or \"0-1/4\" (shards 0 to 1 of 4)".to_string();
        let (range, total) = text.split_once('/').ok_or_else(shape)?;
        let number = |part: &str| part.trim().parse::<u32>().map_err(|_| shape());
        let total = number(total)?;
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            None => {
                let only = number(range)?;
                (only, only)
            }
        };
        if total == 0 {
            return Err("the total number of shards must be at least 1".to_string());
        }
        if first > last || last >= total {
            return Err(format!(
                "shards are numbered 0 to {} and the range must go upwards",
                total - 1
            ));
        }
        Ok(ShardPlan::Range { first, last, total })
    }
}

impl fmt::Display for ShardPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardPlan::Auto => f.write_str("auto"),
            ShardPlan::Range { first, last, total } if first == last => {
                write!(f, "{first}/{total}")
            }
            ShardPlan::Range { first, last, total } => write!(f, "{first}-{last}/{total}"),
        }
    }
}

impl Serialize for ShardPlan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Everything the gateway transport needs; built from the configuration
/// (`crate::config::parts`), or by hand in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// The bot token. A secret: never logged, masked in `Debug`.
    pub token: Secret,
    /// Register commands to this guild only (instant updates while developing); `None`: globally.
    pub guild_id: Option<u64>,
    /// Base URL of Discord's REST API; anything but discord.com is used as a proxy.
    pub api_base: String,
    /// Which shards this process runs.
    pub shards: ShardPlan,
    /// Gateway intents; [`default_intents`] unless a caller needs more.
    pub intents: GatewayIntents,
    /// Answer mentions in a new thread started from the question instead of a reply.
    pub mention_replies_in_thread: bool,
    /// Ask for the privileged Message Content intent (it must be switched on in the Developer
    /// Portal first, or Discord closes the connection with 4014): follow-ups in the bot's
    /// threads and replies to its answers then need no mention.
    pub message_content_intent: bool,
}

impl GatewaySettings {
    /// Checks a bot token as pasted: serenity adds the `Bot ` prefix itself; any whitespace inside
    /// means a bad paste. The message never echoes the token.
    pub fn check_token(token: &str) -> Result<(), String> {
        let bare = token.strip_prefix("Bot ").unwrap_or(token);
        if bare.is_empty() || bare.chars().any(char::is_whitespace) {
            Err("it contains spaces or line breaks; paste only the token from the Bot page of your application".into())
        } else {
            Ok(())
        }
    }

    /// Settings for `token` with the defaults: global commands, discord.com, automatic sharding,
    /// [`default_intents`], mention replies in the channel.
    pub fn new(token: impl Into<String>) -> Self {
        GatewaySettings {
            token: Secret::new(token),
            guild_id: None,
            api_base: super::DISCORD_API_BASE.to_string(),
            shards: ShardPlan::Auto,
            intents: default_intents(),
            mention_replies_in_thread: false,
            message_content_intent: false,
        }
    }

    /// The intents asked for: [`GatewaySettings::intents`], plus Message Content when enabled.
    pub fn effective_intents(&self) -> GatewayIntents {
        if self.message_content_intent {
            self.intents | GatewayIntents::MESSAGE_CONTENT
        } else {
            self.intents
        }
    }

    /// Whether REST goes to discord.com itself (serenity's own rate limiter on) rather than to
    /// another base URL (proxy mode).
    pub fn uses_discord_directly(&self) -> bool {
        self.api_base.trim_end_matches('/') == super::DISCORD_API_BASE
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
            HttpBuilder::new(self.token.expose()).default_allowed_mentions(render::no_pings());
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
        message_content: settings.message_content_intent,
        registered: AtomicBool::new(false),
        in_flight: in_flight.clone(),
    };
    let intents = settings.effective_intents();
    tracing::info!(
        api_base = %settings.api_base,
        shards = ?settings.shards,
        intents = ?intents,
        guild_commands = settings.guild_id.is_some(),
        "starting the Discord gateway client"
    );
    let mut client = ClientBuilder::new_with_http(settings.http(), intents)
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
    async fn respond(&self, reply: Reply) -> Result<(), ResponderError> {
        reply
            .to_interaction_response()
            .execute(&*self.http, (self.id, &self.token))
            .await
            .map_err(|error| self.error("interaction callback", error))?;
        self.responded.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn edit(&self, rendered: Rendered) -> Result<(), ResponderError> {
        rendered
            .to_edit()
            .execute(&*self.http, &self.token)
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
    /// The Message Content intent is on: follow-ups without a mention carry their text.
    message_content: bool,
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
        let commands = commands::registration_payload();
        let (scope, result) = match self.guild_id {
            Some(guild) => (
                "guild",
                ctx.http.create_guild_commands(guild, &commands).await,
            ),
            None => ("global", ctx.http.create_global_commands(&commands).await),
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
                request::from_autocomplete(command),
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
        let responder = GatewayResponder::new(Arc::clone(&ctx.http), id, token);
        self.spawn_interaction(invocation, responder, autocomplete);
    }

    async fn message(&self, ctx: Context, message: Message) {
        let bot_id = ctx.cache.current_user().id;
        if message.author.bot || message.author.id == bot_id {
            return;
        }
        let mode = self.mode_of(message.guild_id, message.channel_id).await;
        if mode == ChannelMode::Off {
            tracing::debug!(
                channel = message.channel_id.get(),
                "guidebot is off in this channel"
            );
            return;
        }
        let context = self.message_context(&ctx, &message, bot_id).await;
        let mut route = request::route_message(&message, bot_id, context);
        let mut auto_thread = None;
        if route == MessageRoute::Ignore {
            // Not a mention nor a follow-up: a new post in an auto-answer channel, or the first
            // message of a post in an auto-answer forum (it has the thread's id), is answered
            // when the guides cover it.
            let auto = if mode == ChannelMode::AutoAnswer {
                true
            } else if message.guild_id.is_some() && message.id.get() == message.channel_id.get() {
                let parent = self.parent_of(&ctx, message.channel_id).await;
                let forum_mode = match parent {
                    Some(parent) => self.mode_of(message.guild_id, parent).await,
                    None => ChannelMode::default(),
                };
                auto_thread = Some(message.channel_id);
                forum_mode == ChannelMode::AutoAnswer
            } else {
                false
            };
            if !auto {
                return;
            }
            route = request::auto_answer(&message, bot_id, self.message_content);
        }
        let mut invocation = match route {
            MessageRoute::Ask(invocation) => invocation,
            MessageRoute::Ignore => return,
            MessageRoute::NeedsMessageContent => {
                tracing::info!(
                    channel = message.channel_id.get(),
                    "ignoring a message that does not mention the bot (a follow-up, or a post in an auto-answer channel): without the Message Content intent Discord sends no text; mention the bot, or enable the intent in the Developer Portal and set discord.message_content_intent"
                );
                return;
            }
        };
        if let Some(thread) = auto_thread {
            // A forum post is answered in its own thread, which becomes the conversation.
            invocation.conversation = Some(ConversationKey::Thread(thread.get()));
        }
        let dispatcher = Arc::clone(&self.dispatcher);
        let in_thread = self.mention_replies_in_thread || mode == ChannelMode::ThreadPerAnswer;
        let http = Arc::clone(&ctx.http);
        self.in_flight.spawn(async move {
            answer_mention(http, dispatcher, message, invocation, in_thread).await;
        });
    }
}

impl Handler {
    /// The mode of a channel of a server (the default outside servers, or when unreadable).
    async fn mode_of(&self, guild: Option<GuildId>, channel: ChannelId) -> ChannelMode {
        let Some(guild) = guild else {
            return ChannelMode::default();
        };
        self.dispatcher
            .channel_settings()
            .mode(guild.get(), channel.get())
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "channel mode unreadable; using the default");
                ChannelMode::default()
            })
    }

    /// The channel a thread belongs to (a forum, for a forum post): from serenity's cache, else
    /// asked of Discord. `None` when it is not a thread or cannot be read.
    async fn parent_of(&self, ctx: &Context, channel: ChannelId) -> Option<ChannelId> {
        match channel.to_channel(ctx).await {
            Ok(serenity::all::Channel::Guild(channel)) => channel.parent_id,
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(%error, "cannot read the channel of a new post");
                None
            }
        }
    }

    /// Where a message stands in the bot's conversations: in one of its threads, replying to one
    /// of its answers, in a thread (whose). History errors count as "not in a conversation", a
    /// channel that cannot be read as [`ChannelKind::Unknown`] (both logged).
    async fn message_context(
        &self,
        ctx: &Context,
        message: &Message,
        bot_id: UserId,
    ) -> MessageContext {
        let history = self.dispatcher.conversations();
        let now = now_unix();
        let in_bot_thread = history
            .is_bot_thread(message.channel_id.get(), now)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot tell whether the channel is a bot thread");
                false
            });
        // A reply to one of the bot's answers: the answer's conversation, as linked when it was
        // posted; failing that (a restart, or a reply faster than the link), the conversation of
        // the message the answer itself replied to, or a chain started at it.
        let replied_conversation = match message
            .referenced_message
            .as_ref()
            .filter(|referenced| referenced.author.id == bot_id)
        {
            Some(answer) => {
                let answered = answer
                    .message_reference
                    .as_ref()
                    .and_then(|reference| reference.message_id)
                    .map(|id| id.get());
                let mut found = None;
                for id in std::iter::once(answer.id.get()).chain(answered) {
                    match history.conversation_of(id, now).await {
                        Ok(Some(key)) => {
                            found = Some(key);
                            break;
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(%error, "cannot read which conversation a reply continues")
                        }
                    }
                }
                found.or(Some(ConversationKey::Chain(
                    answered.unwrap_or(answer.id.get()),
                )))
            }
            None => None,
        };
        // The channel is looked up only where it can change the route: a mention that starts a
        // conversation (in a thread, the thread's), and a message in one of the bot's threads
        // (whether the bot opened it). Elsewhere `Unknown` routes the same and costs no call.
        let mentioned = message.mentions.iter().any(|user| user.id == bot_id);
        let channel = if message.guild_id.is_none() {
            ChannelKind::NotThread
        } else if in_bot_thread || (mentioned && replied_conversation.is_none()) {
            self.channel_kind(ctx, message, bot_id).await
        } else {
            ChannelKind::Unknown
        };
        MessageContext {
            in_bot_thread,
            channel,
            replied_conversation,
            message_content: self.message_content,
        }
    }

    /// What a server message's channel is (a thread, and whether the bot opened it): from
    /// serenity's cache (the server's channels and active threads), else asked of Discord
    /// (`GET /channels/{id}`). `Unknown` when it cannot be read (logged).
    async fn channel_kind(&self, ctx: &Context, message: &Message, bot_id: UserId) -> ChannelKind {
        let id = message.channel_id;
        let cached = message.guild_id.and_then(|guild| {
            let guild = ctx.cache.guild(guild)?;
            let channel = guild
                .channels
                .get(&id)
                .or_else(|| guild.threads.iter().find(|thread| thread.id == id))?;
            Some(request::channel_kind(channel, bot_id))
        });
        if let Some(kind) = cached {
            return kind;
        }
        match id.to_channel(ctx).await {
            Ok(serenity::all::Channel::Guild(channel)) => request::channel_kind(&channel, bot_id),
            Ok(_) => ChannelKind::NotThread,
            Err(error) => {
                tracing::debug!(
                    %error,
                    channel = id.get(),
                    "cannot read the message's channel: a mention there is answered as a reply chain, a follow-up without one quietly"
                );
                ChannelKind::Unknown
            }
        }
    }

    /// Runs the dispatcher in its own tracked task (the shard keeps reading events): a failure
    /// or a panic is logged and, where Discord still allows it, answered with a notice.
    fn spawn_interaction(
        &self,
        invocation: Invocation,
        responder: GatewayResponder,
        autocomplete: bool,
    ) {
        let dispatcher = Arc::clone(&self.dispatcher);
        let started = Instant::now();
        self.in_flight.spawn(async move {
            let interaction = responder.id;
            match dispatcher.run_interaction(invocation, &responder).await {
                Ok(report) => log_report(&report, interaction, started.elapsed()),
                Err(error) => {
                    tracing::warn!(%interaction, %error, "answering an interaction failed");
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
        command = report.command.as_str(),
        outcome = report.outcome.as_str(),
        deferred = report.deferred,
        mode = report.mode.map_or("-", |mode| mode.as_str()),
        fallback = report.fallback.as_ref().map_or("-", |reason| reason.label()),
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
        responder.respond(Reply::Choices(Vec::new())).await
    } else if responder.responded() {
        responder
            .edit(render::render_notice(FAILURE_NOTICE, true))
            .await
    } else {
        let notice = render::render_notice(FAILURE_NOTICE, true);
        responder.respond(Reply::Message(notice)).await
    };
    if let Err(error) = result {
        tracing::warn!(interaction = %responder.id, %error, "could not tell the user the interaction failed");
    }
}

/// Answers a message that mentioned the bot (or a follow-up in one of its conversations) through
/// the dispatcher: a new question opens a thread when configured (and possible), else it is
/// answered as a reply in the channel; typing shows while it is written. The posted answer is
/// linked to its conversation, so a reply to it is a follow-up.
async fn answer_mention(
    http: Arc<Http>,
    dispatcher: Arc<Dispatcher>,
    message: Message,
    mut invocation: Invocation,
    in_thread: bool,
) {
    let started = Instant::now();
    let mut target = message.channel_id;
    let mut conversation = invocation.conversation;
    if conversation.is_none() && in_thread && message.guild_id.is_some() {
        let question = match &invocation.request {
            request::BotRequest::Mention { question } => question.as_str(),
            _ => "",
        };
        let thread = CreateThread::new(render::thread_name(question))
            .auto_archive_duration(AutoArchiveDuration::OneDay);
        match message
            .channel_id
            .create_thread_from_message(&*http, message.id, thread)
            .await
        {
            Ok(thread) => {
                target = thread.id;
                conversation = Some(ConversationKey::Thread(thread.id.get()));
            }
            // E.g. the question was asked inside a thread already, or permissions are missing.
            Err(error) => {
                tracing::warn!(%error, "could not open a thread; replying in the channel")
            }
        }
    }
    let conversation = conversation.unwrap_or(ConversationKey::Chain(message.id.get()));
    invocation.conversation = Some(conversation);
    // The question belongs to its conversation too: a reply to an answer of it finds the
    // conversation through the message that answer replied to.
    if let Err(error) = dispatcher
        .conversations()
        .link(message.id.get(), conversation, now_unix())
        .await
    {
        tracing::warn!(%error, "could not link the question to its conversation");
    }
    // An auto-answer may stay silent: no "typing…" that would promise an answer.
    let quiet = matches!(invocation.request, request::BotRequest::AutoAnswer { .. });
    let typing = (!quiet).then(|| target.start_typing(&http));
    let reference = (target == message.channel_id).then(|| {
        let mut reference = MessageReference::from(&message);
        // The question may be deleted meanwhile: still post the answer.
        reference.fail_if_not_exists = Some(false);
        reference
    });
    let responder = MentionResponder {
        http: Arc::clone(&http),
        target,
        reference,
        conversation,
        history: Arc::clone(dispatcher.conversations()),
    };
    let result = dispatcher.run_interaction(invocation, &responder).await;
    if let Some(typing) = typing {
        typing.stop();
    }
    match result {
        Ok(report) => tracing::info!(
            command = report.command.as_str(),
            outcome = report.outcome.as_str(),
            mode = report.mode.map_or("-", |mode| mode.as_str()),
            follow_up = report.follow_up,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "mention answered"
        ),
        Err(error) => {
            tracing::warn!(%error, "answering a mention failed");
            let notice = render::render_notice(FAILURE_NOTICE, false).to_channel_message();
            if let Err(error) = target.send_message(&*http, notice).await {
                tracing::warn!(%error, "could not tell the user the mention failed");
            }
        }
    }
}

/// Replies to a mention with a channel message (a reply to the question, or a post in the
/// thread). Mentions are answered once: the final answer, not the text as it streams.
struct MentionResponder {
    http: Arc<Http>,
    target: ChannelId,
    reference: Option<MessageReference>,
    /// The conversation each posted answer is linked to, so a reply to it is a follow-up.
    conversation: ConversationKey,
    history: Arc<dyn ConversationHistory>,
}

impl MentionResponder {
    async fn post(&self, rendered: &Rendered) -> Result<(), ResponderError> {
        let mut message = rendered.to_channel_message();
        if let Some(reference) = &self.reference {
            message = message.reference_message(reference.clone());
        }
        let sent = self
            .target
            .send_message(&*self.http, message)
            .await
            .map_err(|error| ResponderError(format!("posting the mention answer: {error}")))?;
        let linked = self
            .history
            .link(sent.id.get(), self.conversation, now_unix())
            .await;
        if let Err(error) = linked {
            tracing::warn!(%error, "could not link the answer to its conversation");
        }
        Ok(())
    }
}

impl Responder for MentionResponder {
    async fn respond(&self, reply: Reply) -> Result<(), ResponderError> {
        match reply {
            Reply::Message(rendered) => self.post(&rendered).await,
            // The typing indicator already says an answer is coming.
            Reply::Deferred { .. } => Ok(()),
            Reply::Choices(_) => Err(ResponderError(
                "a mention takes no autocomplete choices".to_string(),
            )),
            Reply::RolePing { .. } => Err(ResponderError(
                "a hand-off answers a button press, never a mention".to_string(),
            )),
        }
    }

    async fn edit(&self, rendered: Rendered) -> Result<(), ResponderError> {
        self.post(&rendered).await
    }

    fn streams(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_debug_never_shows_the_token() {
        let settings = GatewaySettings::new("secret-token-123");
        assert_eq!(settings.api_base, crate::transport::DISCORD_API_BASE);
        assert!(settings.uses_discord_directly());
        assert_eq!(settings.shards, ShardPlan::Auto);
        assert_eq!(settings.guild_id, None);
        assert_eq!(settings.intents, default_intents());
        assert!(!settings.intents.contains(GatewayIntents::MESSAGE_CONTENT));
        assert!(!settings.mention_replies_in_thread);
        let debug = format!("{settings:?}");
        assert!(!debug.contains("secret-token-123") && debug.contains("***"));
    }

    #[test]
    fn shard_plans_parse_and_print() {
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
        for bad in ["0-1", "2-1/4", "0-4/4", "0/0", "half"] {
            assert!(ShardPlan::parse(bad).is_err(), "{bad}");
        }
        for text in ["auto", "2/4", "0-1/4"] {
            assert_eq!(ShardPlan::parse(text).unwrap().to_string(), text);
        }
    }
}
