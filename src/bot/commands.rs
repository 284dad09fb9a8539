//! The slash commands guidebot registers, within Discord's naming and length rules.

use super::render::MAX_CHOICE_LEN;
use serenity::all::{CommandOptionType, CreateCommand, CreateCommandOption};

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
    ]
}
