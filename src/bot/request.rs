//! Discord interactions and messages → plain requests the dispatcher understands.

use super::admin::ChannelMode;
use super::conversation::ConversationKey;
use serenity::all::{
    ChannelType, CommandInteraction, ComponentInteraction, GuildChannel, Message, PartialChannel,
    Permissions, ResolvedOption, ResolvedValue, UserId,
};

/// Who asked and where: ids as plain numbers (hashed before anything is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub user_id: u64,
    pub guild_id: Option<u64>,
    pub channel_id: Option<u64>,
    pub request: BotRequest,
    /// The conversation a question continues or starts (a thread, a reply chain); `None` for a
    /// one-off question, which neither reads nor writes history.
    pub conversation: Option<ConversationKey>,
}

/// What a user asked for, independent of how Discord delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotRequest {
    Ask {
        question: String,
        private: bool,
    },
    Search {
        query: String,
    },
    Comp {
        company: String,
        level: Option<String>,
        compare: Option<String>,
    },
    Source {
        section: String,
    },
    About,
    /// A message that mentions the bot; the text without the mention.
    Mention {
        question: String,
    },
    /// A question nobody asked the bot: a new post in an auto-answer channel (or forum), or a
    /// message without a mention in a thread the bot answered in but did not open. Answered only
    /// when the guides cover it, silent otherwise, so the bot never floods a community thread
    /// with refusals.
    AutoAnswer {
        question: String,
    },
    Autocomplete {
        command: String,
        option: String,
        partial: String,
    },
    /// A 👍/👎 press on an answer; `answer_key` identifies the answer.
    Feedback {
        helpful: bool,
        answer_key: String,
    },
    /// A "Still need help?" press: hand the question to the server's helper role.
    Escalate {
        answer_key: String,
    },
    /// `/guidebot ...`: server administration. `manage_server` is what the interaction says of
    /// the member's permissions on receipt (Discord hides the command from others, but a
    /// permission override or a stale client may still send it).
    Admin {
        action: AdminAction,
        manage_server: bool,
    },
    Unknown {
        name: String,
    },
}

/// What an admin asked for with `/guidebot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// `/guidebot reload`: rebuild the index now.
    Reload,
    /// `/guidebot stats`: this server's counters.
    Stats,
    /// `/guidebot channel mode:`: set this channel's mode (`None`: a mode guidebot does not know).
    Channel { mode: Option<ChannelMode> },
}

/// Whether the member who sent an interaction may administer the bot: Manage Server or
/// Administrator in the permissions Discord computed for them in that channel. Outside a server
/// (no member) nobody may.
pub fn may_manage_server(permissions: Option<Permissions>) -> bool {
    permissions.is_some_and(|permissions| {
        permissions.contains(Permissions::MANAGE_GUILD)
            || permissions.contains(Permissions::ADMINISTRATOR)
    })
}

/// Reads `/guidebot`'s subcommand.
fn admin_action(options: &[ResolvedOption<'_>]) -> Option<AdminAction> {
    let first = options.first()?;
    let ResolvedValue::SubCommand(inner) = &first.value else {
        return None;
    };
    match first.name {
        "reload" => Some(AdminAction::Reload),
        "stats" => Some(AdminAction::Stats),
        "channel" => {
            let mode = inner.iter().find_map(|option| match option.value {
                ResolvedValue::String(value) if option.name == "mode" => ChannelMode::parse(value),
                _ => None,
            });
            Some(AdminAction::Channel { mode })
        }
        _ => None,
    }
}

/// Reads an autocomplete interaction: always an autocomplete request (answered with type 8), even
/// when no option is marked focused (then with no option and no text, so the choices are empty).
pub fn from_autocomplete(interaction: &CommandInteraction) -> Invocation {
    let mut invocation = from_command(interaction);
    if !matches!(invocation.request, BotRequest::Autocomplete { .. }) {
        invocation.request = BotRequest::Autocomplete {
            command: interaction.data.name.clone(),
            option: String::new(),
            partial: String::new(),
        };
    }
    invocation
}

/// Reads a slash command or autocomplete interaction.
pub fn from_command(interaction: &CommandInteraction) -> Invocation {
    let data = &interaction.data;
    let request = if let Some(focused) = data.autocomplete() {
        BotRequest::Autocomplete {
            command: data.name.clone(),
            option: focused.name.to_string(),
            partial: focused.value.to_string(),
        }
    } else {
        let options = data.options();
        let text = |name: &str| -> Option<String> {
            options
                .iter()
                .find(|option| option.name == name)
                .and_then(|option| match &option.value {
                    ResolvedValue::String(value) => Some(value.to_string()),
                    ResolvedValue::Autocomplete { value, .. } => Some(value.to_string()),
                    _ => None,
                })
        };
        let flag = |name: &str| -> bool {
            options.iter().any(|option| {
                option.name == name && matches!(option.value, ResolvedValue::Boolean(true))
            })
        };
        match data.name.as_str() {
            "ask" => BotRequest::Ask {
                question: text("question").unwrap_or_default(),
                private: flag("private"),
            },
            "search" => BotRequest::Search {
                query: text("query").unwrap_or_default(),
            },
            "comp" => BotRequest::Comp {
                company: text("company").unwrap_or_default(),
                level: text("level").filter(|level| !level.trim().is_empty()),
                compare: text("compare").filter(|other| !other.trim().is_empty()),
            },
            "source" => BotRequest::Source {
                section: text("section").unwrap_or_default(),
            },
            "about" => BotRequest::About,
            "guidebot" => match admin_action(&options) {
                Some(action) => BotRequest::Admin {
                    action,
                    manage_server: may_manage_server(
                        interaction
                            .member
                            .as_ref()
                            .and_then(|member| member.permissions),
                    ),
                },
                None => BotRequest::Unknown {
                    name: "guidebot".to_string(),
                },
            },
            other => BotRequest::Unknown {
                name: other.to_string(),
            },
        }
    };
    // `/ask` in a thread continues the thread's conversation (in both transports: the
    // interaction says what kind of channel it came from).
    let conversation = interaction
        .channel
        .as_ref()
        .filter(|channel| is_thread(channel))
        .map(|channel| ConversationKey::Thread(channel.id.get()));
    Invocation {
        user_id: interaction.user.id.get(),
        guild_id: interaction.guild_id.map(|id| id.get()),
        channel_id: Some(interaction.channel_id.get()),
        request,
        conversation,
    }
}

/// Whether an interaction's channel is a thread (public, private or announcement).
fn is_thread(channel: &PartialChannel) -> bool {
    is_thread_type(channel.kind)
}

/// The channel types Discord uses for threads (public, private, announcement).
fn is_thread_type(kind: ChannelType) -> bool {
    matches!(
        kind,
        ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread
    )
}

/// What a server channel is to the bot, read from the channel Discord (or serenity's cache)
/// describes: a thread (by its type, or by the thread metadata only threads carry) and whether
/// the bot opened it (its owner), which decides how loud follow-ups there may be.
pub fn channel_kind(channel: &GuildChannel, bot_user_id: UserId) -> ChannelKind {
    if is_thread_type(channel.kind) || channel.thread_metadata.is_some() {
        ChannelKind::Thread {
            opened_by_bot: channel.owner_id == Some(bot_user_id),
        }
    } else {
        ChannelKind::NotThread
    }
}

/// Prefix of the feedback buttons' custom ids.
pub const FEEDBACK_PREFIX: &str = "feedback";
/// Prefix of the buttons that open a section (`source:guide#section-id`).
pub const SOURCE_PREFIX: &str = "source";
/// Prefix of the "Still need help?" button (`escalate:<answer key>`).
pub const ESCALATE_PREFIX: &str = "escalate";

/// Reads a button press.
pub fn from_component(interaction: &ComponentInteraction) -> Invocation {
    let custom_id = interaction.data.custom_id.as_str();
    let source = custom_id
        .strip_prefix(SOURCE_PREFIX)
        .and_then(|rest| rest.strip_prefix(':'));
    let mut parts = custom_id.splitn(3, ':');
    let request = match (source, parts.next(), parts.next(), parts.next()) {
        (Some(section), ..) => BotRequest::Source {
            section: section.to_string(),
        },
        (None, Some(FEEDBACK_PREFIX), Some(vote), Some(key)) if vote == "up" || vote == "down" => {
            BotRequest::Feedback {
                helpful: vote == "up",
                answer_key: key.to_string(),
            }
        }
        (None, Some(ESCALATE_PREFIX), key, None) => BotRequest::Escalate {
            answer_key: key.unwrap_or_default().to_string(),
        },
        _ => BotRequest::Unknown {
            name: custom_id.to_string(),
        },
    };
    Invocation {
        user_id: interaction.user.id.get(),
        guild_id: interaction.guild_id.map(|id| id.get()),
        channel_id: Some(interaction.channel_id.get()),
        request,
        conversation: None,
    }
}

/// What a message's channel is, as far as the transport looked it up: whether a mention starts
/// a thread conversation, and whether follow-ups there may refuse out loud.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChannelKind {
    /// Not looked up (it could not change the route), or the lookup failed. Read as "not a
    /// thread" for a mention (a reply chain) and "not the bot's own thread" for a follow-up
    /// without a mention (quiet): when unsure, the bot neither loses a conversation nor floods.
    #[default]
    Unknown,
    /// Not a thread: a text channel, a forum, a DM.
    NotThread,
    /// A thread; `opened_by_bot` when its owner is the bot (its own answer threads), not when
    /// someone else opened it (a community thread, a forum post the bot auto-answered).
    Thread { opened_by_bot: bool },
}

/// Where a message stands in the bot's conversations, as the transport found out before reading
/// it (the history knows threads and answers; the message says what it replies to; the channel
/// says whether it is a thread and whose).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageContext {
    /// The message's channel is a thread the bot started or answered in.
    pub in_bot_thread: bool,
    /// What the message's channel is.
    pub channel: ChannelKind,
    /// The conversation of the message it replies to, when that is one of the bot's answers.
    pub replied_conversation: Option<ConversationKey>,
    /// The privileged Message Content intent is on, so messages that do not mention the bot
    /// carry their text.
    pub message_content: bool,
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageRoute {
    /// Not for the bot (another conversation, a bot, the bot itself, nothing to ask).
    Ignore,
    /// A question: a mention, or a follow-up in one of the bot's conversations.
    Ask(Invocation),
    /// A follow-up in one of the bot's conversations that does not mention it, whose text
    /// Discord withholds without the Message Content intent.
    NeedsMessageContent,
}

/// Routes a message: mentions are questions (continuing the conversation they are in, if any; a
/// mention in a thread starts that thread's conversation, so the thread becomes one of the bot's);
/// in a thread the bot answered in, or replying to one of its answers, a message without a
/// mention is a follow-up too — when its text is readable. In a thread the bot answered in but
/// did not open, such a message is answered quietly ([`BotRequest::AutoAnswer`]: only when the
/// guides cover it), since nobody there asked the bot; mentions are always answered.
pub fn route_message(
    message: &Message,
    bot_user_id: UserId,
    context: MessageContext,
) -> MessageRoute {
    if message.author.bot || message.author.id == bot_user_id {
        return MessageRoute::Ignore;
    }
    let mentioned = message.mentions.iter().any(|user| user.id == bot_user_id);
    let in_thread = matches!(context.channel, ChannelKind::Thread { .. });
    let conversation = if context.in_bot_thread {
        Some(ConversationKey::Thread(message.channel_id.get()))
    } else if context.replied_conversation.is_some() {
        context.replied_conversation
    } else if mentioned && in_thread {
        Some(ConversationKey::Thread(message.channel_id.get()))
    } else {
        None
    };
    if !mentioned && conversation.is_none() {
        return MessageRoute::Ignore;
    }
    let question = strip_mentions(&message.content, bot_user_id.get());
    if question.is_empty() {
        return if !mentioned && !context.message_content {
            MessageRoute::NeedsMessageContent
        } else {
            MessageRoute::Ignore
        };
    }
    let opened_by_bot = context.channel
        == ChannelKind::Thread {
            opened_by_bot: true,
        };
    let request = if !mentioned && context.in_bot_thread && !opened_by_bot {
        BotRequest::AutoAnswer { question }
    } else {
        BotRequest::Mention { question }
    };
    MessageRoute::Ask(Invocation {
        user_id: message.author.id.get(),
        guild_id: message.guild_id.map(|id| id.get()),
        channel_id: Some(message.channel_id.get()),
        request,
        conversation,
    })
}

/// Reads a new post in an auto-answer channel or forum: a question to answer quietly, unless it
/// comes from a bot (or the bot itself) or has no text (then, without the Message Content intent,
/// Discord withheld it).
pub fn auto_answer(message: &Message, bot_user_id: UserId, message_content: bool) -> MessageRoute {
    if message.author.bot || message.author.id == bot_user_id {
        return MessageRoute::Ignore;
    }
    let question = strip_mentions(&message.content, bot_user_id.get());
    if question.is_empty() {
        return if message_content {
            MessageRoute::Ignore
        } else {
            MessageRoute::NeedsMessageContent
        };
    }
    MessageRoute::Ask(Invocation {
        user_id: message.author.id.get(),
        guild_id: message.guild_id.map(|id| id.get()),
        channel_id: Some(message.channel_id.get()),
        request: BotRequest::AutoAnswer { question },
        conversation: None,
    })
}

/// Removes `<@id>` and `<@!id>` mentions of the bot and trims.
pub fn strip_mentions(content: &str, bot_user_id: u64) -> String {
    content
        .replace(&format!("<@{bot_user_id}>"), " ")
        .replace(&format!("<@!{bot_user_id}>"), " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serenity::all::{ChannelId, GuildId, MessageId, ThreadMetadata, User};

    const BOT: u64 = 42;
    const THREAD: u64 = 900;

    fn user(id: u64) -> User {
        let mut user = User::default();
        user.id = UserId::new(id);
        user
    }

    /// A human's message in channel `THREAD` of a server, mentioning the bot or not.
    fn message(content: &str, mentions_bot: bool) -> Message {
        let mut message = Message::default();
        message.id = MessageId::new(901);
        message.channel_id = ChannelId::new(THREAD);
        message.guild_id = Some(GuildId::new(7));
        message.author = user(5);
        if mentions_bot {
            message.content = format!("<@{BOT}> {content}");
            message.mentions = vec![user(BOT)];
        } else {
            message.content = content.to_string();
        }
        message
    }

    fn context(in_bot_thread: bool, channel: ChannelKind) -> MessageContext {
        MessageContext {
            in_bot_thread,
            channel,
            replied_conversation: None,
            message_content: true,
        }
    }

    /// The request and conversation a message is routed to (panics on any other route).
    fn asked(message: &Message, context: MessageContext) -> (BotRequest, Option<ConversationKey>) {
        match route_message(message, UserId::new(BOT), context) {
            MessageRoute::Ask(invocation) => (invocation.request, invocation.conversation),
            other => panic!("not a question: {other:?}"),
        }
    }

    const SOMEONES_THREAD: ChannelKind = ChannelKind::Thread {
        opened_by_bot: false,
    };
    const BOTS_THREAD: ChannelKind = ChannelKind::Thread {
        opened_by_bot: true,
    };

    #[test]
    fn a_mention_in_a_thread_starts_that_threads_conversation() {
        let mention = message("google L4 pay?", true);
        let question = || BotRequest::Mention {
            question: "google L4 pay?".to_string(),
        };
        assert_eq!(
            asked(&mention, context(false, SOMEONES_THREAD)),
            (question(), Some(ConversationKey::Thread(THREAD)))
        );
        // Not a thread, or unknown (the lookup failed): no conversation yet, so the transport
        // starts a reply chain.
        for channel in [ChannelKind::NotThread, ChannelKind::Unknown] {
            assert_eq!(asked(&mention, context(false, channel)), (question(), None));
        }
        // A reply to an answer keeps the conversation the answer belongs to.
        let replying = MessageContext {
            replied_conversation: Some(ConversationKey::Chain(3)),
            ..context(false, SOMEONES_THREAD)
        };
        assert_eq!(
            asked(&mention, replying),
            (question(), Some(ConversationKey::Chain(3)))
        );
    }

    #[test]
    fn unpinged_follow_ups_are_quiet_only_in_threads_the_bot_did_not_open() {
        let unpinged = message("and at Meta?", false);
        let thread = Some(ConversationKey::Thread(THREAD));
        let quiet = BotRequest::AutoAnswer {
            question: "and at Meta?".to_string(),
        };
        let loud = BotRequest::Mention {
            question: "and at Meta?".to_string(),
        };
        assert_eq!(
            asked(&unpinged, context(true, BOTS_THREAD)),
            (loud.clone(), thread)
        );
        assert_eq!(
            asked(&unpinged, context(true, SOMEONES_THREAD)),
            (quiet.clone(), thread)
        );
        // Whose thread it is unknown: quiet rather than flooding.
        assert_eq!(
            asked(&unpinged, context(true, ChannelKind::Unknown)),
            (quiet, thread)
        );
        // A mention is always answered, refusals included.
        let mention = message("and at Meta?", true);
        assert_eq!(
            asked(&mention, context(true, SOMEONES_THREAD)),
            (loud, thread)
        );
        // A thread the bot never answered in is not its business without a mention.
        assert_eq!(
            route_message(&unpinged, UserId::new(BOT), context(false, SOMEONES_THREAD)),
            MessageRoute::Ignore
        );
        // Without the Message Content intent the text is withheld: said in the logs.
        let withheld = message("", false);
        let no_content = MessageContext {
            message_content: false,
            ..context(true, SOMEONES_THREAD)
        };
        assert_eq!(
            route_message(&withheld, UserId::new(BOT), no_content),
            MessageRoute::NeedsMessageContent
        );
    }

    #[test]
    fn threads_are_told_by_type_or_metadata_and_their_owner() {
        let mut channel = GuildChannel::default();
        channel.kind = ChannelType::Text;
        assert_eq!(
            channel_kind(&channel, UserId::new(BOT)),
            ChannelKind::NotThread
        );
        channel.kind = ChannelType::PublicThread;
        channel.owner_id = Some(UserId::new(BOT));
        assert_eq!(channel_kind(&channel, UserId::new(BOT)), BOTS_THREAD);
        channel.kind = ChannelType::PrivateThread;
        channel.owner_id = Some(UserId::new(5));
        assert_eq!(channel_kind(&channel, UserId::new(BOT)), SOMEONES_THREAD);
        // A type serenity does not know, but with thread metadata: still a thread.
        channel.kind = ChannelType::Unknown(99);
        let metadata: Result<ThreadMetadata, _> = serde_json::from_value(serde_json::json!({
            "archived": false,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-01-01T00:00:00+00:00",
            "locked": false
        }));
        channel.thread_metadata = Some(metadata.expect("thread metadata as Discord sends it"));
        assert_eq!(channel_kind(&channel, UserId::new(BOT)), SOMEONES_THREAD);
    }

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(
            strip_mentions("<@42> what's  the TC? <@!42>", 42),
            "what's the TC?"
        );
        assert_eq!(strip_mentions("<@43> hi", 42), "<@43> hi");
    }
}
