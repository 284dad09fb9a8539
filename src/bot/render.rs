//! Replies → Discord messages: embeds within every limit (title 256, description 4096, field name
//! 256, field value 1024, 25 fields, 10 embeds, 6000 characters per message), autocomplete within
//! its limits (25 choices, 100 characters), thread names (100 characters), monospace comp tables
//! (Discord cannot render Markdown tables), feedback buttons, and `allowed_mentions` that ping no
//! one. Discord's limits live here and nowhere else.

use crate::answer::Answer;
use crate::comp::{render_rows, source_footer, CompLookup};
use crate::engine::{About, SectionView};
use crate::search::SearchResults;
pub use crate::util::text::truncate;
use serenity::all::{
    AutocompleteChoice, ButtonStyle, Colour, CreateActionRow, CreateAllowedMentions,
    CreateAutocompleteResponse, CreateButton, CreateEmbed, CreateEmbedFooter,
    CreateInteractionResponse, CreateInteractionResponseMessage, CreateMessage,
    EditInteractionResponse, ReactionType, RoleId,
};

pub const TITLE_LIMIT: usize = 256;
pub const DESCRIPTION_LIMIT: usize = 4096;
pub const FIELD_NAME_LIMIT: usize = 256;
pub const FIELD_VALUE_LIMIT: usize = 1024;
pub const FOOTER_LIMIT: usize = 2048;
pub const FIELDS_PER_EMBED: usize = 25;
pub const EMBEDS_PER_MESSAGE: usize = 10;
pub const MESSAGE_EMBED_TOTAL: usize = 6000;
pub const CONTENT_LIMIT: usize = 2000;
/// Most autocomplete choices Discord accepts; more are rejected by the API.
pub const MAX_CHOICES: usize = 25;
/// Longest autocomplete choice name and value, and longest thread name.
pub const MAX_CHOICE_LEN: usize = 100;

const ANSWER_COLOUR: Colour = Colour(0x2f80ed);
const REFUSAL_COLOUR: Colour = Colour(0x9b9b9b);
const WARNING_COLOUR: Colour = Colour(0xf2994a);

/// A message before it is turned into the builder a route needs. Plain data so tests can check
/// limits without serializing.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub content: Option<String>,
    pub embeds: Vec<EmbedParts>,
    pub buttons: Vec<Button>,
    pub ephemeral: bool,
}

/// One embed's parts, already within their limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedParts {
    pub title: Option<String>,
    pub description: Option<String>,
    pub fields: Vec<(String, String)>,
    pub footer: Option<String>,
    pub colour: u32,
}

impl EmbedParts {
    /// Characters Discord counts toward the 6000 per message.
    pub fn counted_chars(&self) -> usize {
        let count = |text: &Option<String>| text.as_deref().map_or(0, |t| t.chars().count());
        count(&self.title)
            + count(&self.description)
            + count(&self.footer)
            + self
                .fields
                .iter()
                .map(|(name, value)| name.chars().count() + value.chars().count())
                .sum::<usize>()
    }

    fn to_builder(&self) -> CreateEmbed {
        let mut embed = CreateEmbed::new().colour(Colour(self.colour));
        if let Some(title) = &self.title {
            embed = embed.title(title);
        }
        if let Some(description) = &self.description {
            embed = embed.description(description);
        }
        for (name, value) in &self.fields {
            embed = embed.field(name, value, false);
        }
        if let Some(footer) = &self.footer {
            embed = embed.footer(CreateEmbedFooter::new(footer));
        }
        embed
    }
}

/// A button under a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub custom_id: String,
    pub label: String,
    pub emoji: Option<char>,
}

/// Buttons in one action row, and action rows in one message (Discord's limits).
const BUTTONS_PER_ROW: usize = 5;
const ROWS_PER_MESSAGE: usize = 5;
/// Longest button label and custom id Discord accepts.
const BUTTON_LABEL_LIMIT: usize = 80;
const CUSTOM_ID_LIMIT: usize = 100;

impl Rendered {
    /// Total embed characters, the figure Discord limits to 6000.
    pub fn embed_chars(&self) -> usize {
        self.embeds.iter().map(EmbedParts::counted_chars).sum()
    }

    fn embeds(&self) -> Vec<CreateEmbed> {
        self.embeds.iter().map(EmbedParts::to_builder).collect()
    }

    fn components(&self) -> Vec<CreateActionRow> {
        if self.buttons.is_empty() {
            return Vec::new();
        }
        self.buttons
            .chunks(BUTTONS_PER_ROW)
            .take(ROWS_PER_MESSAGE)
            .map(|row| {
                CreateActionRow::Buttons(
                    row.iter()
                        .map(|button| {
                            let created = CreateButton::new(&button.custom_id)
                                .label(&button.label)
                                .style(ButtonStyle::Secondary);
                            match button.emoji {
                                Some(emoji) => {
                                    created.emoji(ReactionType::Unicode(emoji.to_string()))
                                }
                                None => created,
                            }
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// As an immediate interaction response (callback type 4).
    pub fn to_interaction_response(&self) -> CreateInteractionResponse {
        let mut message = CreateInteractionResponseMessage::new()
            .embeds(self.embeds())
            .components(self.components())
            .allowed_mentions(no_pings())
            .ephemeral(self.ephemeral);
        if let Some(content) = &self.content {
            message = message.content(content);
        }
        CreateInteractionResponse::Message(message)
    }

    /// As an edit of a deferred response. serenity does not apply default allowed mentions to
    /// edits, so they are set here explicitly.
    pub fn to_edit(&self) -> EditInteractionResponse {
        let mut edit = EditInteractionResponse::new()
            .embeds(self.embeds())
            .components(self.components())
            .allowed_mentions(no_pings());
        if let Some(content) = &self.content {
            edit = edit.content(content);
        }
        edit
    }

    /// As a channel message (answers to mentions), replying to `reference` when given.
    pub fn to_channel_message(&self) -> CreateMessage {
        let mut message = CreateMessage::new()
            .embeds(self.embeds())
            .components(self.components())
            .allowed_mentions(no_pings());
        if let Some(content) = &self.content {
            message = message.content(content);
        }
        message
    }
}

/// `allowed_mentions` with an empty parse list: echoed text never pings @everyone, roles or users.
pub fn no_pings() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
        .everyone(false)
        .all_users(false)
        .all_roles(false)
        .replied_user(false)
}

/// `allowed_mentions` that ping exactly one role: nobody else, never @everyone.
pub fn only_role(role_id: u64) -> CreateAllowedMentions {
    no_pings().roles(vec![RoleId::new(role_id.max(1))])
}

/// A deferred response (callback type 5), ephemeral when the answer will be.
pub fn deferred(ephemeral: bool) -> CreateInteractionResponse {
    CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new().ephemeral(ephemeral))
}

/// What a handler sends first. Plain data: each transport turns it into what its route takes
/// (an interaction callback, or a channel message for a mention).
#[derive(Debug, Clone)]
pub enum Reply {
    /// The answer, or a notice.
    Message(Rendered),
    /// "Thinking…": the answer follows as an edit; ephemeral when the answer will be.
    Deferred { ephemeral: bool },
    /// Autocomplete choices, already within Discord's limits (see [`fit_choices`]).
    Choices(Vec<(String, String)>),
    /// A public message that pings one role and nothing else (the hand-off to helpers).
    RolePing { role_id: u64, rendered: Rendered },
}

impl Reply {
    /// As an interaction callback.
    pub fn to_interaction_response(&self) -> CreateInteractionResponse {
        match self {
            Reply::Message(rendered) => rendered.to_interaction_response(),
            Reply::RolePing { role_id, rendered } => {
                let mut message = CreateInteractionResponseMessage::new()
                    .embeds(rendered.embeds())
                    .allowed_mentions(only_role(*role_id));
                if let Some(content) = &rendered.content {
                    message = message.content(content);
                }
                CreateInteractionResponse::Message(message)
            }
            Reply::Deferred { ephemeral } => deferred(*ephemeral),
            Reply::Choices(choices) => CreateInteractionResponse::Autocomplete(
                CreateAutocompleteResponse::new().set_choices(
                    choices
                        .iter()
                        .map(|(name, value)| AutocompleteChoice::new(name.as_str(), value.as_str()))
                        .collect(),
                ),
            ),
        }
    }
}

/// `(name, value)` choices within Discord's limits: at most 25, names cut to 100 characters. A
/// value is sent back and resolved, so it is never cut: a `guide#section` reference too long for
/// 100 characters is replaced by its section id (which also resolves), else the choice is dropped.
pub fn fit_choices(choices: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    choices
        .into_iter()
        .filter_map(|(name, value)| {
            let value = match value.split_once('#') {
                Some((_, section)) if value.chars().count() > MAX_CHOICE_LEN => section.to_string(),
                _ => value,
            };
            (value.chars().count() <= MAX_CHOICE_LEN)
                .then(|| (truncate(&name, MAX_CHOICE_LEN), value))
        })
        .take(MAX_CHOICES)
        .collect()
}

/// A thread name from a question: one line, within Discord's limit, never empty.
pub fn thread_name(question: &str) -> String {
    let line = question.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = truncate(&line, MAX_CHOICE_LEN);
    if name.is_empty() {
        "guidebot answer".to_string()
    } else {
        name
    }
}

/// The notice for a `/source` reference that matches no section, with the closest headings.
pub fn render_no_such_section(section: &str, suggestions: &[String]) -> Rendered {
    let mut text = format!("No section called \"{}\".", truncate(section, 100));
    if !suggestions.is_empty() {
        let lines: Vec<String> = suggestions
            .iter()
            .take(5)
            .map(|name| format!("• {name}"))
            .collect();
        text.push_str(&format!(" Did you mean:\n{}", lines.join("\n")));
    }
    render_notice(&text, true)
}

/// The notice for a command guidebot does not know.
pub fn render_unknown_command(name: &str) -> Rendered {
    render_notice(
        &format!(
            "I don't know the command \"{}\". Try /ask, /search, /comp, /source or /about.",
            truncate(name, 60)
        ),
        true,
    )
}

/// Splits a long text into pieces of at most `limit` characters at paragraph, sentence or word ends.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > limit {
        let head: String = rest.chars().take(limit).collect();
        let cut = ["\n\n", ". ", "\n", " "]
            .iter()
            .filter_map(|separator| head.rfind(separator).map(|index| index + separator.len()))
            .find(|&index| index > limit / 3)
            .unwrap_or(head.len());
        pieces.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_string());
    }
    pieces
}

/// Context the answer renderer needs beyond the answer itself.
#[derive(Debug, Clone)]
pub struct AnswerFrame {
    /// "Guide as of 2026 · comp per levels.fyi 2026 · extractive"
    pub footer: String,
    /// Key for the feedback buttons; `None` hides them.
    pub feedback_key: Option<String>,
    pub ephemeral: bool,
    /// Offer the "Still need help?" button (a helper role is configured and the answer is public).
    pub offer_help: bool,
}

/// A final answer: the text (split across embeds when long), then numbered sources with quotes.
pub fn render_answer(answer: &Answer, frame: &AnswerFrame) -> Rendered {
    let colour = if answer.refused {
        REFUSAL_COLOUR
    } else {
        ANSWER_COLOUR
    };
    let mut body = answer.answer.clone();
    if let Some(note) = &answer.note {
        body.push_str(&format!("\n\n*{note}*"));
    }
    let title = truncate(&answer.question, TITLE_LIMIT);
    let footer = truncate(&frame.footer, FOOTER_LIMIT);
    // Budget: title + footer + sources must fit with the text in 6000.
    let mut fields: Vec<(String, String)> = answer
        .citations
        .iter()
        .take(FIELDS_PER_EMBED)
        .map(|citation| {
            let name = truncate(
                &format!("[{}] {}", citation.n, citation.heading),
                FIELD_NAME_LIMIT,
            );
            let source = format!("\n— {}", citation.guide_title);
            let quote_room = FIELD_VALUE_LIMIT.saturating_sub(source.chars().count() + 4);
            let value = format!(
                "> {}{source}",
                truncate(&citation.quote.replace('\n', " / "), quote_room)
            );
            (name, truncate(&value, FIELD_VALUE_LIMIT))
        })
        .collect();
    let fixed = title.chars().count() + footer.chars().count();
    let fields_chars = |fields: &[(String, String)]| -> usize {
        fields
            .iter()
            .map(|(name, value)| name.chars().count() + value.chars().count())
            .sum()
    };
    // Shrink quotes first if text + sources would pass the message limit.
    let text_room_wanted = body.chars().count().min(DESCRIPTION_LIMIT * 2);
    while fixed + text_room_wanted + fields_chars(&fields) > MESSAGE_EMBED_TOTAL
        && fields.iter().any(|(_, value)| value.chars().count() > 120)
    {
        for (_, value) in fields.iter_mut() {
            let length = value.chars().count();
            if length > 120 {
                *value = truncate(value, (length * 2 / 3).max(120));
            }
        }
    }
    let text_budget = MESSAGE_EMBED_TOTAL.saturating_sub(fixed + fields_chars(&fields));
    let body = truncate(&body, text_budget.max(1));
    let pieces = split_text(&body, DESCRIPTION_LIMIT);
    let piece_count = pieces.len().min(EMBEDS_PER_MESSAGE);
    let mut embeds = Vec::with_capacity(piece_count);
    for (index, piece) in pieces.into_iter().take(piece_count).enumerate() {
        let last = index + 1 == piece_count;
        embeds.push(EmbedParts {
            title: (index == 0).then(|| title.clone()),
            description: Some(piece),
            fields: if last {
                std::mem::take(&mut fields)
            } else {
                Vec::new()
            },
            footer: last.then(|| footer.clone()),
            colour: colour.0,
        });
    }
    let mut buttons = match &frame.feedback_key {
        Some(key) if !answer.refused => feedback_buttons(key),
        _ => Vec::new(),
    };
    if frame.offer_help && !frame.ephemeral {
        let key: String = frame
            .feedback_key
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(80)
            .collect();
        buttons.push(Button {
            custom_id: format!("{}:{key}", super::request::ESCALATE_PREFIX),
            label: "Still need help?".to_string(),
            emoji: Some('🙋'),
        });
    }
    Rendered {
        content: None,
        embeds,
        buttons,
        ephemeral: frame.ephemeral,
    }
}

/// The footer of an answer still being written.
pub const PARTIAL_FOOTER: &str =
    "writing… not yet checked against the guide; sources follow once it is";

/// The answer while an LLM is still writing it: unchecked text, marked as such in the footer
/// (the final edit keeps only the sentences the checks support, and says when it removed some).
pub fn render_partial(question: &str, text_so_far: &str, ephemeral: bool) -> Rendered {
    Rendered {
        content: None,
        embeds: vec![EmbedParts {
            title: Some(truncate(question, TITLE_LIMIT)),
            description: Some(truncate(&format!("{text_so_far} …"), DESCRIPTION_LIMIT)),
            fields: Vec::new(),
            footer: Some(PARTIAL_FOOTER.to_string()),
            colour: ANSWER_COLOUR.0,
        }],
        buttons: Vec::new(),
        ephemeral,
    }
}

fn feedback_buttons(key: &str) -> Vec<Button> {
    let key: String = key.chars().take(80).collect();
    vec![
        Button {
            custom_id: format!("{}:up:{key}", super::request::FEEDBACK_PREFIX),
            label: "Helpful".to_string(),
            emoji: Some('👍'),
        },
        Button {
            custom_id: format!("{}:down:{key}", super::request::FEEDBACK_PREFIX),
            label: "Not helpful".to_string(),
            emoji: Some('👎'),
        },
    ]
}

/// The hand-off: a public message in the answer's channel or thread that pings the helper role
/// (only it: see [`only_role`]) for the member who pressed "Still need help?".
pub fn render_escalation(role_id: u64, user_id: u64) -> Reply {
    Reply::RolePing {
        role_id,
        rendered: Rendered {
            content: Some(format!(
                "<@&{role_id}> <@{user_id}> still needs help after guidebot's answer above."
            )),
            embeds: Vec::new(),
            buttons: Vec::new(),
            ephemeral: false,
        },
    }
}

/// `/search`: the best passages with highlighted snippets, or "nothing relevant".
pub fn render_search(results: &SearchResults) -> Rendered {
    let title = truncate(&format!("Search: {}", results.query), TITLE_LIMIT);
    if !results.relevant {
        let mut description = "Nothing in the guides matches that.".to_string();
        if !results.hits.is_empty() {
            description.push_str(" Closest sections:");
            let mut seen = Vec::new();
            for hit in &results.hits {
                if !seen.contains(&&hit.section_id) {
                    seen.push(&hit.section_id);
                    description.push_str(&format!("\n• {}", hit.heading));
                }
            }
        }
        return notice_embed(&title, &description, REFUSAL_COLOUR, false);
    }
    let fields: Vec<(String, String)> = results
        .hits
        .iter()
        .take(5)
        .map(|hit| {
            (
                truncate(&format!("{}. {}", hit.rank, hit.heading), FIELD_NAME_LIMIT),
                truncate(&hit.snippet, FIELD_VALUE_LIMIT),
            )
        })
        .collect();
    let mut description = String::new();
    for (from, to) in &results.corrections {
        description.push_str(&format!("(read \"{from}\" as \"{to}\") "));
    }
    Rendered {
        content: None,
        embeds: vec![EmbedParts {
            title: Some(title),
            description: (!description.is_empty())
                .then(|| truncate(&description, DESCRIPTION_LIMIT)),
            fields,
            footer: Some("Use /source with a section heading to read it in full".to_string()),
            colour: ANSWER_COLOUR.0,
        }],
        buttons: Vec::new(),
        ephemeral: false,
    }
}

/// `/comp`: the rows as an aligned monospace block (Discord cannot render Markdown tables).
pub fn render_comp(lookup: &CompLookup, asked: &str) -> Rendered {
    let mut description = String::new();
    if !lookup.rows.is_empty() {
        // Backticks cannot occur: the comp renderer replaces them.
        let table = render_rows(&lookup.rows);
        description.push_str(&format!(
            "```\n{}\n```",
            truncate(&table, DESCRIPTION_LIMIT - 200)
        ));
    }
    for name in &lookup.not_found {
        description.push_str(&format!(
            "\nThe guides have no compensation data for \"{}\".",
            truncate(name, 100)
        ));
    }
    for name in &lookup.filtered_out {
        description.push_str(&format!(
            "\nNo row for \"{}\" matches that level.",
            truncate(name, 100)
        ));
    }
    if !lookup.suggestions.is_empty() {
        description.push_str(&format!(
            "\nDid you mean: {}?",
            truncate(&lookup.suggestions.join(", "), 300)
        ));
    }
    let colour = if lookup.rows.is_empty() {
        WARNING_COLOUR
    } else {
        ANSWER_COLOUR
    };
    Rendered {
        content: None,
        embeds: vec![EmbedParts {
            title: Some(truncate(&format!("Compensation: {asked}"), TITLE_LIMIT)),
            description: Some(truncate(description.trim(), DESCRIPTION_LIMIT)),
            fields: Vec::new(),
            footer: (!lookup.rows.is_empty())
                .then(|| truncate(&source_footer(&lookup.rows), FOOTER_LIMIT)),
            colour: colour.0,
        }],
        buttons: Vec::new(),
        ephemeral: false,
    }
}

/// `/source`: a section in full, split over embeds if needed (6000 characters at most). A heading
/// with no text of its own lists its subsections, each with a button that opens it.
pub fn render_section(view: &SectionView) -> Rendered {
    if view.passages.is_empty() {
        return render_section_index(view);
    }
    let mut text = String::new();
    for passage in &view.passages {
        let block = match passage.kind {
            crate::corpus::PassageKind::Table => format!("```\n{}\n```", passage.text),
            crate::corpus::PassageKind::ListItem => format!("• {}", passage.text),
            _ => passage.text.clone(),
        };
        if !text.is_empty() {
            text.push_str(if passage.kind == crate::corpus::PassageKind::ListItem {
                "\n"
            } else {
                "\n\n"
            });
        }
        text.push_str(&block);
    }
    let title = truncate(&view.heading, TITLE_LIMIT);
    let footer = truncate(
        &format!("{} · as of {}", view.guide_title, view.as_of),
        FOOTER_LIMIT,
    );
    let budget = MESSAGE_EMBED_TOTAL - title.chars().count() - footer.chars().count() - 50;
    let text = truncate(&text, budget);
    let pieces = split_text(&text, DESCRIPTION_LIMIT);
    let count = pieces.len();
    let embeds = pieces
        .into_iter()
        .enumerate()
        .map(|(index, piece)| EmbedParts {
            title: (index == 0).then(|| title.clone()),
            description: Some(piece),
            fields: Vec::new(),
            footer: (index + 1 == count).then(|| footer.clone()),
            colour: ANSWER_COLOUR.0,
        })
        .collect();
    Rendered {
        content: None,
        embeds,
        buttons: Vec::new(),
        ephemeral: false,
    }
}

/// "by Blake Crosley · 2026 · data as of 2026 · 17 sections · 7 listed sources", leaving out what
/// a guide does not say.
fn guide_summary_line(guide: &crate::engine::GuideSummary) -> String {
    let mut parts = Vec::new();
    if !guide.author.is_empty() {
        parts.push(format!("by {}", guide.author));
    }
    if let Some(year) = guide.year {
        parts.push(year.to_string());
    }
    parts.push(format!("data as of {}", guide.as_of));
    parts.push(format!("{} sections", guide.sections));
    if !guide.sources.is_empty() {
        parts.push(format!("{} listed sources", guide.sources.len()));
    }
    parts.join(" · ")
}

/// A section without text: its subsections, listed and pickable (never an empty message, which
/// Discord rejects).
fn render_section_index(view: &SectionView) -> Rendered {
    let title = truncate(&view.heading, TITLE_LIMIT);
    let footer = truncate(
        &format!("{} · as of {}", view.guide_title, view.as_of),
        FOOTER_LIMIT,
    );
    let description = if view.subsections.is_empty() {
        "This section has no text of its own.".to_string()
    } else {
        let mut text = String::from("This section has no text of its own; its subsections:");
        for subsection in &view.subsections {
            text.push_str(&format!("\n• {}", subsection.heading));
        }
        truncate(&text, DESCRIPTION_LIMIT)
    };
    let buttons = view
        .subsections
        .iter()
        .take(BUTTONS_PER_ROW * ROWS_PER_MESSAGE)
        .map(|subsection| {
            let full = format!(
                "{}:{}#{}",
                super::request::SOURCE_PREFIX,
                subsection.guide,
                subsection.section_id
            );
            let custom_id = if full.chars().count() <= CUSTOM_ID_LIMIT {
                full
            } else {
                // The section id alone still finds it (first match across guides).
                let short = format!(
                    "{}:{}",
                    super::request::SOURCE_PREFIX,
                    subsection.section_id
                );
                short.chars().take(CUSTOM_ID_LIMIT).collect()
            };
            Button {
                custom_id,
                label: truncate(&subsection.heading, BUTTON_LABEL_LIMIT),
                emoji: None,
            }
        })
        .collect();
    Rendered {
        content: None,
        embeds: vec![EmbedParts {
            title: Some(title),
            description: Some(description),
            fields: Vec::new(),
            footer: Some(footer),
            colour: ANSWER_COLOUR.0,
        }],
        buttons,
        ephemeral: false,
    }
}

/// `/about`: the guides with their as-of dates, the answer mode and the index fingerprint.
pub fn render_about(about: &About) -> Rendered {
    let fields = about
        .guides
        .iter()
        .take(FIELDS_PER_EMBED - 1)
        .map(|guide| {
            (
                truncate(&guide.title, FIELD_NAME_LIMIT),
                truncate(&guide_summary_line(guide), FIELD_VALUE_LIMIT),
            )
        })
        .collect();
    let mode = match &about.model {
        Some(model) => format!(
            "{} ({model}), checked against the guides",
            about.answer_mode
        ),
        None => "extractive: quoted straight from the guides".to_string(),
    };
    let description = format!(
        "Answers questions about the Data Scientist / ML Engineer Hub's career guides, citing the section and the exact quote.\nAnswer mode: {mode}\nIndexed passages: {} · comp rows: {}",
        about.passages, about.comp_records
    );
    let fingerprint: String = about.fingerprint.chars().take(12).collect();
    Rendered {
        content: None,
        embeds: vec![EmbedParts {
            title: Some("About guidebot".to_string()),
            description: Some(truncate(&description, DESCRIPTION_LIMIT)),
            fields,
            footer: Some(format!("index {fingerprint} · guidebot {}", about.version)),
            colour: ANSWER_COLOUR.0,
        }],
        buttons: Vec::new(),
        ephemeral: false,
    }
}

/// A short message in an embed (errors, acknowledgements).
pub fn render_notice(text: &str, ephemeral: bool) -> Rendered {
    notice_embed("guidebot", text, WARNING_COLOUR, ephemeral)
}

fn notice_embed(title: &str, description: &str, colour: Colour, ephemeral: bool) -> Rendered {
    Rendered {
        content: None,
        embeds: vec![EmbedParts {
            title: Some(truncate(title, TITLE_LIMIT)),
            description: Some(truncate(description, DESCRIPTION_LIMIT)),
            fields: Vec::new(),
            footer: None,
            colour: colour.0,
        }],
        buttons: Vec::new(),
        ephemeral,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_the_limit() {
        let text = "word ".repeat(100);
        let cut = truncate(&text, 50);
        assert!(cut.chars().count() <= 50 && cut.ends_with('…'));
        assert_eq!(truncate("short", 50), "short");
    }

    #[test]
    fn choices_and_thread_names_fit_discords_limits() {
        let long = "x".repeat(150);
        let many = (0..40).map(|n| (format!("{n} {long}"), n.to_string()));
        let fitted = fit_choices(many);
        assert_eq!(fitted.len(), MAX_CHOICES);
        assert!(fitted
            .iter()
            .all(|(name, _)| name.chars().count() == MAX_CHOICE_LEN && name.ends_with('…')));
        let section = fit_choices([("a".to_string(), format!("guide#{}", "s".repeat(99)))]);
        assert_eq!(section[0].1, "s".repeat(99));
        assert!(fit_choices([("a".to_string(), long.clone())]).is_empty());
        let name = thread_name(&"why ".repeat(100));
        assert!(name.chars().count() <= MAX_CHOICE_LEN);
        assert_eq!(thread_name("a\nb"), "a b");
        assert_eq!(thread_name(""), "guidebot answer");
    }

    #[test]
    fn split_pieces_fit() {
        let text = "A sentence here. ".repeat(600);
        let pieces = split_text(&text, DESCRIPTION_LIMIT);
        assert!(pieces.len() >= 3);
        assert!(pieces
            .iter()
            .all(|piece| piece.chars().count() <= DESCRIPTION_LIMIT));
    }
}
