//! Discord interactions and messages → plain requests the dispatcher understands.

use super::admin::ChannelMode;
use super::conversation::ConversationKey;
use serenity::all::{
    ChannelType, CommandInteraction, ComponentInteraction, Message, PartialChannel, Permissions,
    ResolvedOption, ResolvedValue, UserId,
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
    /// A new post in an auto-answer channel (or forum): answered only when the guides cover
    /// it, silent otherwise.
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
    matches!(
        channel.kind,
        ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread
    )
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

/// Where a message stands in the bot's conversations, as the transport found out before reading
/// it (the history knows threads and answers; the message says what it replies to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageContext {
    /// The message's channel is a thread the bot started or answered in.
    pub in_bot_thread: bool,
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

/// Routes a message: mentions are questions (continuing the conversation they are in, if any);
/// in a thread the bot answered in, or replying to one of its answers, a message without a
/// mention is a follow-up too — when its text is readable.
pub fn route_message(
    message: &Message,
    bot_user_id: UserId,
    context: MessageContext,
) -> MessageRoute {
    if message.author.bot || message.author.id == bot_user_id {
        return MessageRoute::Ignore;
    }
    let conversation = if context.in_bot_thread {
        Some(ConversationKey::Thread(message.channel_id.get()))
    } else {
        context.replied_conversation
    };
    let mentioned = message.mentions.iter().any(|user| user.id == bot_user_id);
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
    MessageRoute::Ask(Invocation {
        user_id: message.author.id.get(),
        guild_id: message.guild_id.map(|id| id.get()),
        channel_id: Some(message.channel_id.get()),
        request: BotRequest::Mention { question },
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

    #[test]
    fn mentions_are_stripped() {
        assert_eq!(
            strip_mentions("<@42> what's  the TC? <@!42>", 42),
            "what's the TC?"
        );
        assert_eq!(strip_mentions("<@43> hi", 42), "<@43> hi");
    }
}
