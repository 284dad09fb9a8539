//! Markdown → sections and passages, with pulldown-cmark. One pass over the event stream.

use super::{
    slugify, CorpusError, Guide, GuideMeta, Passage, PassageKind, Section, Table, TableRow,
};
use crate::util::toml::line_of;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::path::Path;

const FRONT_MATTER_FENCE: &str = "+++";

/// Parses a guide's text: optional TOML front matter between `+++` lines, then Markdown. Without
/// front matter the title is the first `#` heading and the slug the file name, with a warning.
pub(super) fn parse_guide(path: &Path, text: &str) -> Result<Guide, CorpusError> {
    let mut warnings = Vec::new();
    let (meta, body_offset) = match parse_front_matter(path, text)? {
        Some(found) => found,
        None => {
            let meta = derived_meta(path, text);
            warnings.push(format!(
                "{}:1: no front matter: title {:?} taken from {}, slug {:?} from the file name",
                path.display(),
                meta.title,
                if first_title_heading(text).is_some() {
                    "the first # heading"
                } else {
                    "the file name"
                },
                meta.slug
            ));
            (meta, 0)
        }
    };
    let line_index = LineIndex::new(text);
    let body = &text[body_offset..];

    let mut builder = GuideBuilder::new(path, &meta);
    builder.warnings = warnings;
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH;
    for (event, range) in Parser::new_ext(body, options).into_offset_iter() {
        let line = line_index.line_of(body_offset + range.start);
        builder.handle(event, line)?;
    }
    builder.finish()
}

/// The front matter and the byte offset where the Markdown starts, or `None` when the file has no
/// front matter.
fn parse_front_matter(path: &Path, text: &str) -> Result<Option<(GuideMeta, usize)>, CorpusError> {
    let text_without_bom = text.strip_prefix('\u{feff}').unwrap_or(text);
    let bom_length = text.len() - text_without_bom.len();
    let mut lines = text_without_bom.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != FRONT_MATTER_FENCE {
        return Ok(None);
    }
    let start = bom_length + first.len();
    let mut offset = start;
    for line in lines {
        if line.trim_end() == FRONT_MATTER_FENCE {
            let toml_text = &text[start..offset];
            let meta: GuideMeta = toml::from_str(toml_text).map_err(|error| {
                let line = error
                    .span()
                    .map_or(2, |span| line_of(text, start + span.start));
                CorpusError::invalid(path, line, format!("bad front matter: {}", error.message()))
            })?;
            validate_meta(path, &meta)?;
            return Ok(Some((meta, offset + line.len())));
        }
        offset += line.len();
    }
    Err(CorpusError::invalid(
        path,
        1,
        "the front matter opened with `+++` is never closed: add a `+++` line after it",
    ))
}

/// Title and slug of a guide without front matter: the first level-1 heading (else the file name)
/// and the file name.
fn derived_meta(path: &Path, text: &str) -> GuideMeta {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let slug = slugify(&stem);
    GuideMeta {
        title: first_title_heading(text).unwrap_or_else(|| stem.replace(['-', '_'], " ")),
        slug,
        author: String::new(),
        year: None,
        publisher: None,
        as_of: None,
        sources: Vec::new(),
    }
}

/// The text of the first `#` (level-1) heading, inline markup removed.
fn first_title_heading(text: &str) -> Option<String> {
    let mut inside = false;
    let mut title = String::new();
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1,
                ..
            }) => inside = true,
            Event::End(TagEnd::Heading(HeadingLevel::H1)) => {
                let title = collapse(&title);
                if !title.is_empty() {
                    return Some(title);
                }
                inside = false;
            }
            Event::Text(text) | Event::Code(text) if inside => title.push_str(&text),
            _ => {}
        }
    }
    None
}

fn validate_meta(path: &Path, meta: &GuideMeta) -> Result<(), CorpusError> {
    if meta.title.trim().is_empty() {
        return Err(CorpusError::invalid(
            path,
            2,
            "front matter `title` is empty",
        ));
    }
    let slug_ok = !meta.slug.is_empty()
        && meta
            .slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !slug_ok {
        return Err(CorpusError::invalid(
            path,
            2,
            format!(
                "front matter `slug` {:?} must be lowercase letters, digits and '-'",
                meta.slug
            ),
        ));
    }
    Ok(())
}

/// Maps byte offsets to 1-based line numbers.
struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(index, _)| index + 1));
        LineIndex { line_starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }
}

/// Longest passage, in words: a longer paragraph or list is split at sentence or item boundaries.
pub(crate) const MAX_PASSAGE_WORDS: usize = 150;
/// A list item (with its children) this short is packed with its short neighbours into one passage.
const SHORT_ITEM_WORDS: usize = 15;
/// Most words in a pack of short list items.
const PACK_MAX_WORDS: usize = 90;
/// A paragraph this short ("Notes:", "Matrix Factorization") never stands alone: it introduces the
/// next block instead.
const FRAGMENT_MAX_WORDS: usize = 3;
/// A bold paragraph holding a question ("**What is regression? 👶**") introduces the answer below
/// it, as a heading would, when it is at most this long.
const QUESTION_LINE_MAX_WORDS: usize = 40;

/// A list item with its nested items, as read: its text, with nested lists between pieces of it
/// where the guide has them (text after a nested list is a line of its own, as in the source).
#[derive(Debug, Default)]
struct ItemNode {
    /// Text and nested lists before the text being read.
    pieces: Vec<ItemPiece>,
    /// The text being read (after the last nested list, if any).
    current: String,
    line: usize,
}

#[derive(Debug)]
enum ItemPiece {
    Text(String),
    Child(ItemNode),
}

impl ItemNode {
    fn new(line: usize) -> Self {
        ItemNode {
            pieces: Vec::new(),
            current: String::new(),
            line,
        }
    }

    /// A nested list's item: the text so far becomes a line of its own.
    fn push_child(&mut self, child: ItemNode) {
        let text = std::mem::take(&mut self.current);
        self.pieces.push(ItemPiece::Text(text));
        self.pieces.push(ItemPiece::Child(child));
    }

    /// This item's text and its descendants', in document order, one line each.
    fn lines(&self, out: &mut Vec<(String, usize)>) {
        let push = |text: &str, out: &mut Vec<(String, usize)>| {
            let text = collapse(text);
            if !text.is_empty() {
                out.push((text, self.line));
            }
        };
        for piece in &self.pieces {
            match piece {
                ItemPiece::Text(text) => push(text, out),
                ItemPiece::Child(child) => child.lines(out),
            }
        }
        push(&self.current, out);
    }
}

/// A paragraph being read, with what tells a bold question line from prose.
struct OpenParagraph {
    text: String,
    line: usize,
    /// Letters and digits outside bold or italic text.
    plain_chars: usize,
    footnotes: Vec<String>,
}

struct GuideBuilder<'a> {
    path: &'a Path,
    meta: &'a GuideMeta,
    sections: Vec<Section>,
    passages: Vec<Passage>,
    tables: Vec<Table>,
    /// (level, heading) from the guide title down to the current heading.
    heading_stack: Vec<(u8, String)>,
    current_section: Option<usize>,
    heading: Option<(u8, String, usize)>,
    paragraph: Option<OpenParagraph>,
    code: Option<(String, usize)>,
    /// Open list items, innermost last (nested lists give nested items).
    items: Vec<ItemNode>,
    /// Finished top-level items of the list being read.
    top_items: Vec<ItemNode>,
    /// Nesting depth of open lists.
    list_depth: usize,
    /// Lead-in of the current top-level list (a paragraph ending with ':' or a short fragment).
    list_lead_in: Option<String>,
    /// The last top-level paragraph of the current section, a candidate lead-in or table caption.
    last_paragraph: Option<String>,
    /// A fragment too short to stand alone, waiting to introduce the next block.
    pending_fragment: Option<String>,
    /// The bold question the passages below answer, until the next heading or question.
    subheading: Option<String>,
    table: Option<TableInProgress>,
    /// Nesting of bold / italic spans in the open paragraph.
    emphasis_depth: usize,
    /// Inside an HTML comment that spans several HTML events.
    in_html_comment: bool,
    /// Inside a footnote definition: its label and text so far.
    footnote: Option<(String, String)>,
    footnote_texts: Vec<(String, String)>,
    /// Footnote labels referenced by each passage (by index), joined in `finish`.
    footnote_refs: Vec<(usize, String)>,
    /// Footnote labels referenced by the block being read.
    block_footnotes: Vec<String>,
    /// What was derived or skipped, "file:line: message".
    warnings: Vec<String>,
}

struct TableInProgress {
    header: Vec<String>,
    rows: Vec<TableRow>,
    current_row: Vec<String>,
    cell: Option<String>,
    in_header: bool,
    line: usize,
    row_line: usize,
}

impl<'a> GuideBuilder<'a> {
    fn new(path: &'a Path, meta: &'a GuideMeta) -> Self {
        GuideBuilder {
            path,
            meta,
            sections: Vec::new(),
            passages: Vec::new(),
            tables: Vec::new(),
            heading_stack: Vec::new(),
            current_section: None,
            heading: None,
            paragraph: None,
            code: None,
            items: Vec::new(),
            top_items: Vec::new(),
            list_depth: 0,
            list_lead_in: None,
            last_paragraph: None,
            pending_fragment: None,
            subheading: None,
            table: None,
            emphasis_depth: 0,
            in_html_comment: false,
            footnote: None,
            footnote_texts: Vec::new(),
            footnote_refs: Vec::new(),
            block_footnotes: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, line: usize, message: impl std::fmt::Display) {
        self.warnings
            .push(format!("{}:{line}: {message}", self.path.display()));
    }

    /// The innermost text buffer that inline content goes to.
    fn text_sink(&mut self) -> Option<&mut String> {
        if let Some((_, text)) = self.footnote.as_mut() {
            return Some(text);
        }
        if let Some((_, heading, _)) = self.heading.as_mut() {
            return Some(heading);
        }
        if let Some(table) = self.table.as_mut() {
            return table.cell.as_mut();
        }
        if let Some((code, _)) = self.code.as_mut() {
            return Some(code);
        }
        if let Some(item) = self.items.last_mut() {
            return Some(&mut item.current);
        }
        self.paragraph.as_mut().map(|paragraph| &mut paragraph.text)
    }

    fn push_text(&mut self, text: &str) {
        if self.emphasis_depth == 0
            && self.items.is_empty()
            && self.footnote.is_none()
            && self.heading.is_none()
        {
            if let Some(paragraph) = self.paragraph.as_mut() {
                paragraph.plain_chars += text.chars().filter(|c| c.is_alphanumeric()).count();
            }
        }
        if let Some(sink) = self.text_sink() {
            sink.push_str(text);
        }
    }

    fn handle(&mut self, event: Event<'_>, line: usize) -> Result<(), CorpusError> {
        match event {
            Event::Start(tag) => self.start(tag, line)?,
            Event::End(tag) => self.end(tag, line)?,
            Event::Text(text) | Event::Code(text) => self.push_text(&text),
            Event::InlineMath(text) | Event::DisplayMath(text) => self.push_text(&text),
            Event::SoftBreak | Event::HardBreak => self.push_text(" "),
            Event::Html(html) | Event::InlineHtml(html) => {
                // Comments are never guide text; tags are dropped, but text inside a block of HTML
                // is kept so nothing readable disappears.
                let visible = visible_html_text(&html, &mut self.in_html_comment);
                if !visible.trim().is_empty() {
                    if self.text_sink().is_none() {
                        self.paragraph = Some(OpenParagraph {
                            text: String::new(),
                            line,
                            plain_chars: 0,
                            footnotes: Vec::new(),
                        });
                        self.push_text(&visible);
                        self.end_paragraph()?;
                    } else {
                        self.push_text(&visible);
                    }
                } else if separates_words(&html) && self.text_sink().is_some() {
                    // A `<br>` (or a cell or paragraph tag) between words still separates them.
                    self.push_text(" ");
                }
            }
            Event::FootnoteReference(label) => {
                // The marker never shows; the footnote's text joins the passage that cites it.
                let label = label.to_string();
                match self.paragraph.as_mut() {
                    Some(paragraph) if self.items.is_empty() => paragraph.footnotes.push(label),
                    _ => self.block_footnotes.push(label),
                }
            }
            Event::TaskListMarker(done) => self.push_text(if done { "[x] " } else { "[ ] " }),
            Event::Rule => {}
        }
        Ok(())
    }

    fn start(&mut self, tag: Tag<'_>, line: usize) -> Result<(), CorpusError> {
        match tag {
            Tag::Heading { level, .. } => {
                self.heading = Some((heading_level(level), String::new(), line));
            }
            Tag::Paragraph => {
                if self.footnote.is_some() {
                    if let Some((_, text)) = self.footnote.as_mut() {
                        if !text.is_empty() {
                            text.push(' ');
                        }
                    }
                } else if self.items.is_empty() && self.table.is_none() {
                    self.paragraph = Some(OpenParagraph {
                        text: String::new(),
                        line,
                        plain_chars: 0,
                        footnotes: Vec::new(),
                    });
                } else if let Some(item) = self.items.last_mut() {
                    // Loose lists wrap item text in paragraphs: separate them by a space.
                    let text = &mut item.current;
                    if !text.is_empty() && !text.ends_with(' ') {
                        text.push(' ');
                    }
                }
            }
            Tag::Strong | Tag::Emphasis | Tag::Strikethrough => self.emphasis_depth += 1,
            Tag::List(_) => {
                if self.list_depth == 0 && self.footnote.is_none() {
                    self.list_lead_in = self.take_lead_in();
                    self.top_items.clear();
                }
                self.list_depth += 1;
            }
            Tag::Item => self.items.push(ItemNode::new(line)),
            Tag::CodeBlock(_) => self.code = Some((String::new(), line)),
            Tag::Table(_) => {
                self.table = Some(TableInProgress {
                    header: Vec::new(),
                    rows: Vec::new(),
                    current_row: Vec::new(),
                    cell: None,
                    in_header: false,
                    line,
                    row_line: line,
                })
            }
            Tag::TableHead => {
                if let Some(table) = self.table.as_mut() {
                    table.in_header = true;
                }
            }
            Tag::TableRow => {
                if let Some(table) = self.table.as_mut() {
                    table.current_row.clear();
                    table.row_line = line;
                }
            }
            Tag::TableCell => {
                if let Some(table) = self.table.as_mut() {
                    table.cell = Some(String::new());
                }
            }
            Tag::FootnoteDefinition(label) => {
                self.footnote = Some((label.to_string(), String::new()));
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, tag: TagEnd, line: usize) -> Result<(), CorpusError> {
        match tag {
            TagEnd::Heading(_) => {
                if let Some((level, heading, heading_line)) = self.heading.take() {
                    self.open_section(level, heading, heading_line)?;
                }
            }
            TagEnd::Paragraph
                if self.footnote.is_none() && self.items.is_empty() && self.table.is_none() =>
            {
                self.end_paragraph()?;
            }
            TagEnd::Strong | TagEnd::Emphasis | TagEnd::Strikethrough => {
                self.emphasis_depth = self.emphasis_depth.saturating_sub(1);
            }
            TagEnd::Item => {
                if let Some(item) = self.items.pop() {
                    match self.items.last_mut() {
                        Some(parent) => parent.push_child(item),
                        None => self.top_items.push(item),
                    }
                }
            }
            TagEnd::List(_) => {
                self.list_depth = self.list_depth.saturating_sub(1);
                if self.list_depth == 0 && self.footnote.is_none() {
                    let items = std::mem::take(&mut self.top_items);
                    let lead_in = self.list_lead_in.take();
                    self.add_list(items, lead_in);
                    self.last_paragraph = None;
                }
            }
            TagEnd::CodeBlock => {
                if let Some((code, code_line)) = self.code.take() {
                    if let Some(item) = self.items.last_mut() {
                        let text = &mut item.current;
                        text.push(' ');
                        text.push_str(&code);
                    } else if let Some((_, text)) = self.footnote.as_mut() {
                        text.push(' ');
                        text.push_str(&code);
                    } else {
                        let context = self.take_lead_in();
                        self.add_passage(
                            PassageKind::Code,
                            code.trim().to_string(),
                            context,
                            code_line,
                        );
                    }
                }
            }
            TagEnd::TableCell => {
                if let Some(table) = self.table.as_mut() {
                    let cell = collapse(&table.cell.take().unwrap_or_default());
                    table.current_row.push(cell);
                }
            }
            TagEnd::TableHead => {
                if let Some(table) = self.table.as_mut() {
                    table.header = std::mem::take(&mut table.current_row);
                    table.in_header = false;
                }
            }
            TagEnd::TableRow => {
                if let Some(table) = self.table.as_mut() {
                    if !table.in_header {
                        let cells = std::mem::take(&mut table.current_row);
                        table.rows.push(TableRow {
                            cells,
                            line: table.row_line,
                        });
                    }
                }
            }
            TagEnd::Table => {
                if let Some(table) = self.table.take() {
                    self.finish_table(table, line);
                }
            }
            TagEnd::FootnoteDefinition => {
                if let Some((label, text)) = self.footnote.take() {
                    self.footnote_texts.push((label, collapse(&text)));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// What introduces the next block: a waiting fragment, or the last paragraph if it ends with
    /// ':' ("Here are some of the feature selections:").
    fn take_lead_in(&mut self) -> Option<String> {
        if let Some(fragment) = self.pending_fragment.take() {
            return Some(fragment);
        }
        self.last_paragraph
            .clone()
            .filter(|paragraph| paragraph.trim_end().ends_with(':'))
    }

    fn end_paragraph(&mut self) -> Result<(), CorpusError> {
        let Some(paragraph) = self.paragraph.take() else {
            return Ok(());
        };
        let text = collapse(&paragraph.text);
        if text.is_empty() {
            return Ok(());
        }
        let words = text.split_whitespace().count();
        if paragraph.plain_chars == 0 && text.contains('?') && words <= QUESTION_LINE_MAX_WORDS {
            // A bold question: what follows answers it, as under a heading.
            self.subheading = Some(text);
            self.last_paragraph = None;
            self.pending_fragment = None;
            return Ok(());
        }
        if words <= FRAGMENT_MAX_WORDS && !text.ends_with(['.', '!', '?']) {
            if let Some(previous) = self.pending_fragment.take() {
                // Two fragments in a row: the first one stands as a passage after all.
                self.add_passage(PassageKind::Paragraph, previous, None, paragraph.line);
            }
            self.pending_fragment = Some(text);
            self.block_footnotes.extend(paragraph.footnotes);
            return Ok(());
        }
        self.last_paragraph = Some(text.clone());
        let context = self.pending_fragment.take();
        self.block_footnotes.extend(paragraph.footnotes);
        if words <= MAX_PASSAGE_WORDS {
            self.add_passage(PassageKind::Paragraph, text, context, paragraph.line);
        } else {
            for chunk in sentence_chunks(&text, MAX_PASSAGE_WORDS * 2 / 3) {
                self.add_passage(
                    PassageKind::Paragraph,
                    chunk,
                    context.clone(),
                    paragraph.line,
                );
            }
        }
        Ok(())
    }

    /// A finished top-level list: each long item with its children is a passage; short items are
    /// packed together; an item too long for one passage is split at its children, each part
    /// carrying the item's own text as context.
    fn add_list(&mut self, items: Vec<ItemNode>, lead_in: Option<String>) {
        let mut pack: Vec<(String, usize)> = Vec::new();
        let mut pack_words = 0;
        for item in items {
            let mut lines = Vec::new();
            item.lines(&mut lines);
            // A line over the passage size is cut at its sentences (or words) into lines.
            let lines: Vec<(String, usize)> = lines
                .into_iter()
                .flat_map(|(text, line)| {
                    if word_count(&text) <= MAX_PASSAGE_WORDS {
                        vec![(text, line)]
                    } else {
                        sentence_chunks(&text, MAX_PASSAGE_WORDS * 2 / 3)
                            .into_iter()
                            .map(|chunk| (chunk, line))
                            .collect()
                    }
                })
                .collect();
            if lines.is_empty() {
                continue;
            }
            let words: usize = lines.iter().map(|(text, _)| word_count(text)).sum();
            if words <= SHORT_ITEM_WORDS && pack_words + words <= PACK_MAX_WORDS {
                pack_words += words;
                pack.extend(lines);
                continue;
            }
            self.flush_pack(&mut pack, &lead_in);
            pack_words = 0;
            if words <= SHORT_ITEM_WORDS {
                pack_words = words;
                pack.extend(lines);
            } else if words <= MAX_PASSAGE_WORDS {
                self.add_lines(lines, lead_in.clone());
            } else {
                self.add_long_item(lines, &lead_in);
            }
        }
        self.flush_pack(&mut pack, &lead_in);
    }

    fn flush_pack(&mut self, pack: &mut Vec<(String, usize)>, lead_in: &Option<String>) {
        if !pack.is_empty() {
            self.add_lines(std::mem::take(pack), lead_in.clone());
        }
    }

    /// An item whose subtree is over the passage size: its first line heads each part.
    fn add_long_item(&mut self, lines: Vec<(String, usize)>, lead_in: &Option<String>) {
        let parent = lines[0].0.clone();
        let context = match lead_in {
            Some(lead_in) => Some(format!("{lead_in} {parent}")),
            None => Some(parent),
        };
        let mut part: Vec<(String, usize)> = Vec::new();
        let mut part_words = 0;
        for (index, (text, line)) in lines.into_iter().enumerate() {
            let words = word_count(&text);
            if !part.is_empty() && part_words + words > MAX_PASSAGE_WORDS * 2 / 3 {
                let chunk_context = if index == 0 {
                    lead_in.clone()
                } else {
                    context.clone()
                };
                self.add_lines(std::mem::take(&mut part), chunk_context);
                part_words = 0;
            }
            part_words += words;
            part.push((text, line));
        }
        if !part.is_empty() {
            self.add_lines(part, context);
        }
    }

    /// One list passage: each line an item, verbatim.
    fn add_lines(&mut self, lines: Vec<(String, usize)>, context: Option<String>) {
        let line = lines.first().map_or(0, |(_, line)| *line);
        let text = lines
            .into_iter()
            .map(|(text, _)| text)
            .collect::<Vec<_>>()
            .join("\n");
        self.add_passage(PassageKind::ListItem, text, context, line);
    }

    fn open_section(&mut self, level: u8, heading: String, line: usize) -> Result<(), CorpusError> {
        self.flush_fragment();
        let heading = collapse(&heading);
        if heading.is_empty() {
            self.warn(
                line,
                "empty heading skipped: give the heading a title or remove the '#'",
            );
            return Ok(());
        }
        while self
            .heading_stack
            .last()
            .is_some_and(|(open_level, _)| *open_level >= level)
        {
            self.heading_stack.pop();
        }
        self.heading_stack.push((level, heading.clone()));
        let mut id = slugify(&heading);
        if self.sections.iter().any(|section| section.id == id) {
            let mut suffix = 2;
            while self
                .sections
                .iter()
                .any(|section| section.id == format!("{id}-{suffix}"))
            {
                suffix += 1;
            }
            id = format!("{id}-{suffix}");
        }
        let heading_path = self.heading_path_with_title();
        self.sections.push(Section {
            id,
            heading,
            heading_path,
            level,
            line,
        });
        self.current_section = Some(self.sections.len() - 1);
        self.last_paragraph = None;
        self.subheading = None;
        Ok(())
    }

    /// A fragment still waiting when its section ends stands as a passage of its own.
    fn flush_fragment(&mut self) {
        if let Some(fragment) = self.pending_fragment.take() {
            self.add_passage(PassageKind::Paragraph, fragment, None, 0);
        }
    }

    fn heading_path_with_title(&self) -> Vec<String> {
        let mut path: Vec<String> = self
            .heading_stack
            .iter()
            .map(|(_, heading)| heading.clone())
            .collect();
        if path.first() != Some(&self.meta.title) {
            path.insert(0, self.meta.title.clone());
        }
        path
    }

    /// The section passages go to; text before the first heading gets an "introduction" section.
    fn section_for_passage(&mut self, line: usize) -> usize {
        if let Some(index) = self.current_section {
            return index;
        }
        self.sections.push(Section {
            id: "introduction".to_string(),
            heading: self.meta.title.clone(),
            heading_path: vec![self.meta.title.clone()],
            level: 1,
            line,
        });
        self.current_section = Some(self.sections.len() - 1);
        self.sections.len() - 1
    }

    /// Appends a passage to the current section with the next ordinal of that section.
    fn add_passage(
        &mut self,
        kind: PassageKind,
        text: String,
        context: Option<String>,
        line: usize,
    ) {
        if text.trim().is_empty() {
            return;
        }
        let section_index = self.section_for_passage(line);
        let section = &self.sections[section_index];
        let ordinal = self
            .passages
            .iter()
            .rev()
            .take_while(|passage| passage.section_id == section.id)
            .count()
            + 1;
        let line = if line == 0 { section.line } else { line };
        self.passages.push(Passage {
            id: format!("{}/{}/{}", self.meta.slug, section.id, ordinal),
            guide_slug: self.meta.slug.clone(),
            guide_title: self.meta.title.clone(),
            section_id: section.id.clone(),
            heading: section.heading.clone(),
            heading_path: section.heading_path.clone(),
            subheading: self.subheading.clone(),
            kind,
            text,
            context,
            line,
        });
        let index = self.passages.len() - 1;
        for label in std::mem::take(&mut self.block_footnotes) {
            self.footnote_refs.push((index, label));
        }
    }

    fn finish_table(&mut self, table: TableInProgress, _end_line: usize) {
        self.flush_fragment();
        // GitHub renders a table whose header cells are empty, and so does the loader: its rows
        // are read without column names. A row with a different number of cells is skipped with a
        // warning rather than failing the whole corpus.
        let mut table = table;
        let columns = table.header.len();
        let mut skipped = Vec::new();
        table.rows.retain(|row| {
            let keep = row.cells.len() == columns;
            if !keep {
                skipped.push((row.line, row.cells.len()));
            }
            keep
        });
        for (line, cells) in skipped {
            self.warn(
                line,
                format!("table row has {cells} cells but the header has {columns}; row skipped"),
            );
        }
        // Rows whose cells are all empty (a spacer row) carry nothing.
        table
            .rows
            .retain(|row| row.cells.iter().any(|cell| !cell.is_empty()));
        let caption = self.last_paragraph.clone();
        let header_named = table.header.iter().any(|cell| !cell.is_empty());
        let header_text = table.header.join(" | ");
        // The whole table as one passage (header and rows, one per line), then each row alone, as
        // written ("Google MLE | L4 | $170k–$220k | $300k–$430k"), with the header as its context.
        let mut lines = Vec::with_capacity(table.rows.len() + 1);
        if header_named {
            lines.push(header_text.clone());
        }
        lines.extend(table.rows.iter().map(|row| row.cells.join(" | ")));
        self.add_passage(
            PassageKind::Table,
            lines.join("\n"),
            caption.clone(),
            table.line,
        );
        // The header is the context's last line, so a reader can name each cell.
        let row_context = match (header_named, &caption) {
            (true, Some(caption)) => Some(format!("{caption}\n{header_text}")),
            (true, None) => Some(header_text.clone()),
            (false, caption) => caption.clone(),
        };
        for row in &table.rows {
            self.add_passage(
                PassageKind::TableRow,
                row.cells.join(" | "),
                row_context.clone(),
                row.line,
            );
        }
        let section_index = self.section_for_passage(table.line);
        let section = &self.sections[section_index];
        self.tables.push(Table {
            section_id: section.id.clone(),
            heading: section.heading.clone(),
            caption,
            header: table.header,
            rows: table.rows,
            line: table.line,
        });
    }

    fn finish(mut self) -> Result<Guide, CorpusError> {
        self.end_paragraph()?;
        self.flush_fragment();
        // Footnote texts join the passages that cite them, as a last line.
        for (index, label) in std::mem::take(&mut self.footnote_refs) {
            let Some((_, text)) = self.footnote_texts.iter().find(|(name, _)| *name == label)
            else {
                continue;
            };
            if let Some(passage) = self.passages.get_mut(index) {
                if !text.is_empty() && !passage.text.contains(text.as_str()) {
                    passage.text.push('\n');
                    passage.text.push_str(text);
                }
            }
        }
        if self.passages.is_empty() {
            return Err(CorpusError::invalid(
                self.path,
                1,
                "the guide has no text after its front matter",
            ));
        }
        Ok(Guide {
            meta: self.meta.clone(),
            path: self.path.to_path_buf(),
            sections: self.sections,
            passages: self.passages,
            tables: self.tables,
            warnings: self.warnings,
        })
    }
}

fn heading_level(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

fn collapse(text: &str) -> String {
    super::collapse_whitespace(text)
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// `text` cut at sentence ends into chunks of about `target_words`; a "sentence" longer than
/// [`MAX_PASSAGE_WORDS`] (a run of text with no sentence end) is cut between words, so no chunk is
/// ever unbounded. Each chunk is a verbatim substring of `text` (whose whitespace is collapsed).
fn sentence_chunks(text: &str, target_words: usize) -> Vec<String> {
    let mut pieces: Vec<&str> = Vec::new();
    for sentence in super::sentences::split_sentences(text) {
        if word_count(sentence) <= MAX_PASSAGE_WORDS {
            pieces.push(sentence);
        } else {
            pieces.extend(word_chunks(sentence, target_words));
        }
    }
    let mut chunks = Vec::new();
    let mut chunk: Vec<&str> = Vec::new();
    let mut words = 0;
    for piece in pieces {
        let piece_words = word_count(piece);
        if !chunk.is_empty() && words + piece_words > target_words {
            chunks.push(chunk.join(" "));
            chunk.clear();
            words = 0;
        }
        words += piece_words;
        chunk.push(piece);
    }
    if !chunk.is_empty() {
        chunks.push(chunk.join(" "));
    }
    chunks
}

/// `text` cut between words into slices of at most `size` words (slices of `text`).
fn word_chunks(text: &str, size: usize) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut start = None;
    let mut end = 0;
    let mut words = 0;
    for (offset, word) in text
        .split(' ')
        .scan(0usize, |position, word| {
            let at = *position;
            *position += word.len() + 1;
            Some((at, word))
        })
        .filter(|(_, word)| !word.is_empty())
    {
        if words == size {
            if let Some(from) = start.take() {
                chunks.push(&text[from..end]);
            }
            words = 0;
        }
        start.get_or_insert(offset);
        end = offset + word.len();
        words += 1;
    }
    if let Some(from) = start {
        chunks.push(&text[from..end]);
    }
    chunks
}

/// Whether an HTML tag breaks the text like a space: line breaks and block tags do; inline ones
/// (`<sub>`, `<b>`) do not.
fn separates_words(html: &str) -> bool {
    let tag = html
        .trim_start()
        .trim_start_matches('<')
        .trim_start_matches('/');
    let name: String = tag
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        name.as_str(),
        "br" | "p"
            | "div"
            | "li"
            | "tr"
            | "td"
            | "th"
            | "table"
            | "hr"
            | "center"
            | "figure"
            | "figcaption"
    )
}

/// The readable text of an HTML fragment: tags dropped, comments dropped even when they span
/// several fragments (`in_comment` carries that state).
fn visible_html_text(html: &str, in_comment: &mut bool) -> String {
    let mut visible = String::with_capacity(html.len());
    let mut rest = html;
    loop {
        if *in_comment {
            match rest.find("-->") {
                Some(end) => {
                    rest = &rest[end + 3..];
                    *in_comment = false;
                }
                None => return visible,
            }
        }
        match rest.find("<!--") {
            Some(start) => {
                visible.push_str(&strip_html_tags(&rest[..start]));
                rest = &rest[start + 4..];
                *in_comment = true;
            }
            None => {
                visible.push_str(&strip_html_tags(rest));
                return visible;
            }
        }
    }
}

fn strip_html_tags(html: &str) -> String {
    let mut visible = String::with_capacity(html.len());
    let mut in_tag = false;
    for character in html.chars() {
        match character {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => visible.push(character),
            _ => {}
        }
    }
    visible
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_spanning_fragments_are_dropped() {
        let mut in_comment = false;
        assert_eq!(visible_html_text("a <!-- b", &mut in_comment), "a ");
        assert!(in_comment);
        assert_eq!(visible_html_text("c --> d <br/>", &mut in_comment), " d ");
        assert!(!in_comment);
    }

    #[test]
    fn text_without_sentence_ends_is_cut_between_words() {
        let text = vec!["word"; 400].join(" ");
        let chunks = sentence_chunks(&text, 100);
        assert_eq!(chunks.len(), 4);
        for chunk in &chunks {
            assert_eq!(word_count(chunk), 100);
            assert!(text.contains(chunk.as_str()));
        }
        assert_eq!(word_chunks("a b c", 2), vec!["a b", "c"]);
    }

    #[test]
    fn long_text_is_chunked_at_sentence_ends() {
        let text = "One two three. Four five six. Seven eight nine.";
        assert_eq!(
            sentence_chunks(text, 4),
            vec!["One two three.", "Four five six.", "Seven eight nine."]
        );
    }
}
