//! The slash commands guidebot registers, within Discord's naming and length rules.

use super::admin::ChannelMode;
use super::render::MAX_CHOICE_LEN;
use serenity::all::{
    CommandOptionType, CreateCommand, CreateCommandOption, InteractionContext, Permissions,
};

/// Options answered with autocomplete choices take at most a choice's length.
const CHOICE_OPTION_LEN: u16 = MAX_CHOICE_LEN as u16;

/// Longest question accepted by `/ask` (Discord allows up to 6000 for a string option).
pub const MAX_QUESTION_CHARS: u16 = 1000;

/// The commands, in the order they appear in Discord's picker.
pub fn slash_commands() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("ask")
            .description("Ask the hub's career guides a question; the answer cites its sources")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "question",
                    "Your question, e.g. What's the TC for a Google L4 MLE?",
                )
                .required(true)
                .min_length(1)
                .max_length(MAX_QUESTION_CHARS),
            )
            .add_option(CreateCommandOption::new(
                CommandOptionType::Boolean,
                "private",
                "Only you see the answer",
            )),
        CreateCommand::new("search")
            .description("Find the passages of the guides that match some words")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "query", "Words to look for")
                    .required(true)
                    .min_length(1)
                    .max_length(MAX_QUESTION_CHARS),
            ),
        CreateCommand::new("comp")
            .description("Compensation bands from the guides' tables, with source and date")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "company",
                    "Company, e.g. Google or Meta E4",
                )
                .required(true)
                .max_length(CHOICE_OPTION_LEN)
                .set_autocomplete(true),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "level",
                    "Only this level, e.g. L4, E4, MTS-3",
                )
                .max_length(40),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "compare",
                    "Another company to compare with",
                )
                .max_length(CHOICE_OPTION_LEN)
                .set_autocomplete(true),
            ),
        CreateCommand::new("source")
            .description("Show a section of a guide in full")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "section", "Section heading")
                    .required(true)
                    .max_length(CHOICE_OPTION_LEN)
                    .set_autocomplete(true),
            ),
        CreateCommand::new("about")
            .description("Which guides guidebot knows, how fresh they are, and how it answers"),
        admin_command(),
    ]
}

/// The commands as the JSON body of a registration (`PUT .../commands`). Discord's OpenAPI
/// description types `default_member_permissions` as an integer while serenity's builder writes a
/// string (Discord takes both): it is sent as the integer the description names.
pub fn registration_payload() -> Vec<serde_json::Value> {
    slash_commands()
        .iter()
        .filter_map(|command| match serde_json::to_value(command) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(%error, "a slash command could not be serialized");
                None
            }
        })
        .map(|mut value| {
            let permissions = value
                .get("default_member_permissions")
                .and_then(serde_json::Value::as_str)
                .and_then(|bits| bits.parse::<u64>().ok());
            if let Some(bits) = permissions {
                value["default_member_permissions"] = serde_json::json!(bits);
            }
            value
        })
        .collect()
}

/// `/guidebot reload | stats | channel mode:`: only members with Manage Server see it
/// (`default_member_permissions` = 32), only in servers; the dispatcher checks the permission
/// again on receipt.
fn admin_command() -> CreateCommand {
    let mut mode = CreateCommandOption::new(
        CommandOptionType::String,
        "mode",
        "How guidebot behaves in this channel",
    )
    .required(true);
    for choice in ChannelMode::ALL {
        mode = mode.add_string_choice(choice.as_str(), choice.as_str());
    }
    CreateCommand::new("guidebot")
        .description("Administer guidebot on this server (Manage Server)")
        .default_member_permissions(Permissions::MANAGE_GUILD)
        .contexts(vec![InteractionContext::Guild])
        .add_option(CreateCommandOption::new(
            CommandOptionType::SubCommand,
            "reload",
            "Rebuild the guides' index now and report the result",
        ))
        .add_option(CreateCommandOption::new(
            CommandOptionType::SubCommand,
            "stats",
            "Questions, refusal rate, feedback and top unanswered questions on this server",
        ))
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::SubCommand,
                "channel",
                "Set how guidebot behaves in this channel",
            )
            .add_sub_option(mode),
        )
}
