//! Discord interactions and messages → plain requests the dispatcher understands.

use serenity::all::{CommandInteraction, ComponentInteraction, Message, ResolvedValue, UserId};

/// Who asked and where: ids as plain numbers (hashed before anything is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub user_id: u64,
    pub guild_id: Option<u64>,
    pub channel_id: Option<u64>,
    pub request: BotRequest,
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
    Unknown {
        name: String,
    },
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
            other => BotRequest::Unknown {
                name: other.to_string(),
            },
        }
    };
    Invocation {
        user_id: interaction.user.id.get(),
        guild_id: interaction.guild_id.map(|id| id.get()),
        channel_id: Some(interaction.channel_id.get()),
        request,
    }
}

/// Prefix of the feedback buttons' custom ids.
pub const FEEDBACK_PREFIX: &str = "feedback";
/// Prefix of the buttons that open a section (`source:guide#section-id`).
pub const SOURCE_PREFIX: &str = "source";

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
        _ => BotRequest::Unknown {
            name: custom_id.to_string(),
        },
    };
    Invocation {
        user_id: interaction.user.id.get(),
        guild_id: interaction.guild_id.map(|id| id.get()),
        channel_id: Some(interaction.channel_id.get()),
        request,
    }
}

/// Reads a message that mentions the bot: `None` when it should be ignored (from a bot, from
/// itself, not mentioning it, or nothing left to ask).
pub fn from_mention(message: &Message, bot_user_id: UserId) -> Option<Invocation> {
    if message.author.bot || message.author.id == bot_user_id {
        return None;
    }
    if !message.mentions.iter().any(|user| user.id == bot_user_id) {
        return None;
    }
    let question = strip_mentions(&message.content, bot_user_id.get());
    if question.is_empty() {
        return None;
    }
    Some(Invocation {
        user_id: message.author.id.get(),
        guild_id: message.guild_id.map(|id| id.get()),
        channel_id: Some(message.channel_id.get()),
        request: BotRequest::Mention { question },
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
