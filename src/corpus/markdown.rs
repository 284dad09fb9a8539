//! Markdown → sections and passages, with pulldown-cmark. One pass over the event stream.

use super::{
    slugify, CorpusError, Guide, GuideMeta, Passage, PassageKind, Section, Table, TableRow,
};
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
    let options = Options::ENABLE_TABLES;
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
                    .map(|span| 1 + text[..start + span.start].matches('\n').count())
                    .unwrap_or(2);
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

/// A block being collected: its text so far and where it started.
struct OpenBlock {
    text: String,
    line: usize,
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
    heading: Option<(u8, OpenBlock)>,
    paragraph: Option<OpenBlock>,
    code: Option<OpenBlock>,
    /// Open list items, innermost last (nested lists give nested items).
    items: Vec<OpenBlock>,
    /// Lead-in of each open list, innermost last.
    list_lead_ins: Vec<Option<String>>,
    /// The last top-level paragraph of the current section, a candidate lead-in or table caption.
    last_paragraph: Option<String>,
    table: Option<TableInProgress>,
    block_quote_depth: usize,
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
            list_lead_ins: Vec::new(),
            last_paragraph: None,
            table: None,
            block_quote_depth: 0,
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, line: usize, message: impl std::fmt::Display) {
        self.warnings
            .push(format!("{}:{line}: {message}", self.path.display()));
    }

    /// The innermost text buffer that inline content goes to.
    fn text_sink(&mut self) -> Option<&mut String> {
        if let Some((_, heading)) = self.heading.as_mut() {
            return Some(&mut heading.text);
        }
        if let Some(table) = self.table.as_mut() {
            return table.cell.as_mut();
        }
        if let Some(code) = self.code.as_mut() {
            return Some(&mut code.text);
        }
        if let Some(item) = self.items.last_mut() {
            return Some(&mut item.text);
        }
        self.paragraph.as_mut().map(|paragraph| &mut paragraph.text)
    }

    fn push_text(&mut self, text: &str) {
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
                // Raw HTML carries no guide text we can quote; a comment or tag is dropped, but text
                // inside a block of HTML is kept so nothing readable disappears.
                let visible = strip_html_tags(&html);
                if !visible.trim().is_empty() {
                    if self.text_sink().is_none() {
                        self.paragraph = Some(OpenBlock {
                            text: String::new(),
                            line,
                        });
                        self.push_text(&visible);
                        self.end_paragraph()?;
                    } else {
                        self.push_text(&visible);
                    }
                }
            }
            Event::FootnoteReference(label) => self.push_text(&format!("[^{label}]")),
            Event::TaskListMarker(done) => self.push_text(if done { "[x] " } else { "[ ] " }),
            Event::Rule => {}
        }
        Ok(())
    }

    fn start(&mut self, tag: Tag<'_>, line: usize) -> Result<(), CorpusError> {
        match tag {
            Tag::Heading { level, .. } => {
                self.heading = Some((
                    heading_level(level),
                    OpenBlock {
                        text: String::new(),
                        line,
                    },
                ));
            }
            Tag::Paragraph => {
                if self.items.is_empty() && self.table.is_none() {
                    self.paragraph = Some(OpenBlock {
                        text: String::new(),
                        line,
                    });
                } else if let Some(item) = self.items.last_mut() {
                    // Loose lists wrap item text in paragraphs: separate them by a space.
                    if !item.text.is_empty() && !item.text.ends_with(' ') {
                        item.text.push(' ');
                    }
                }
            }
            Tag::List(_) => {
                let lead_in = if self.items.is_empty() {
                    self.last_paragraph
                        .clone()
                        .filter(|paragraph| paragraph.trim_end().ends_with(':'))
                } else {
                    self.items.last().map(|item| item.text.trim().to_string())
                };
                self.list_lead_ins.push(lead_in);
            }
            Tag::Item => self.items.push(OpenBlock {
                text: String::new(),
                line,
            }),
            Tag::CodeBlock(_) => {
                self.code = Some(OpenBlock {
                    text: String::new(),
                    line,
                })
            }
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
            Tag::BlockQuote(_) => self.block_quote_depth += 1,
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, tag: TagEnd, line: usize) -> Result<(), CorpusError> {
        match tag {
            TagEnd::Heading(_) => {
                if let Some((level, block)) = self.heading.take() {
                    self.open_section(level, block)?;
                }
            }
            TagEnd::Paragraph if self.items.is_empty() && self.table.is_none() => {
                self.end_paragraph()?;
            }
            TagEnd::Item => {
                if let Some(item) = self.items.pop() {
                    let lead_in = self.list_lead_ins.last().cloned().flatten();
                    self.add_passage(PassageKind::ListItem, item.text, lead_in, item.line)?;
                }
            }
            TagEnd::List(_) => {
                self.list_lead_ins.pop();
                if self.items.is_empty() {
                    self.last_paragraph = None;
                }
            }
            TagEnd::CodeBlock => {
                if let Some(code) = self.code.take() {
                    let context = self.list_lead_ins.last().cloned().flatten();
                    if let Some(item) = self.items.last_mut() {
                        item.text.push(' ');
                        item.text.push_str(&code.text);
                    } else {
                        self.add_passage(PassageKind::Code, code.text, context, code.line)?;
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
                    self.finish_table(table, line)?;
                }
            }
            TagEnd::BlockQuote(_) => {
                self.block_quote_depth = self.block_quote_depth.saturating_sub(1);
            }
            _ => {}
        }
        Ok(())
    }

    fn end_paragraph(&mut self) -> Result<(), CorpusError> {
        if let Some(paragraph) = self.paragraph.take() {
            let text = collapse(&paragraph.text);
            if !text.is_empty() {
                self.last_paragraph = Some(text.clone());
                self.add_passage(PassageKind::Paragraph, text, None, paragraph.line)?;
            }
        }
        Ok(())
    }

    fn open_section(&mut self, level: u8, block: OpenBlock) -> Result<(), CorpusError> {
        let heading = collapse(&block.text);
        if heading.is_empty() {
            return Err(CorpusError::invalid(
                self.path,
                block.line,
                "empty heading: give the heading a title or remove the '#'",
            ));
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
            line: block.line,
        });
        self.current_section = Some(self.sections.len() - 1);
        self.last_paragraph = None;
        Ok(())
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

    fn add_passage(
        &mut self,
        kind: PassageKind,
        text: String,
        context: Option<String>,
        line: usize,
    ) -> Result<(), CorpusError> {
        let text = if kind == PassageKind::Code {
            text.trim().to_string()
        } else {
            collapse(&text)
        };
        if text.is_empty() {
            return Ok(());
        }
        self.push_passage(kind, text, context, line);
        Ok(())
    }

    /// Appends a passage to the current section with the next ordinal of that section.
    fn push_passage(
        &mut self,
        kind: PassageKind,
        text: String,
        context: Option<String>,
        line: usize,
    ) {
        let section_index = self.section_for_passage(line);
        let section = &self.sections[section_index];
        let ordinal = self
            .passages
            .iter()
            .filter(|passage| passage.section_id == section.id)
            .count()
            + 1;
        self.passages.push(Passage {
            id: format!("{}/{}/{}", self.meta.slug, section.id, ordinal),
            guide_slug: self.meta.slug.clone(),
            guide_title: self.meta.title.clone(),
            section_id: section.id.clone(),
            heading: section.heading.clone(),
            heading_path: section.heading_path.clone(),
            kind,
            text,
            context,
            line,
        });
    }

    fn finish_table(
        &mut self,
        table: TableInProgress,
        _end_line: usize,
    ) -> Result<(), CorpusError> {
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
        let caption = self.last_paragraph.clone();
        let header_text = table.header.join(" | ");
        // The whole table as one passage, then each row with the header so it reads alone.
        let mut whole = header_text.clone();
        for row in &table.rows {
            whole.push('\n');
            whole.push_str(&row.cells.join(" | "));
        }
        self.add_table_passage(PassageKind::Table, whole, caption.clone(), table.line);
        for row in &table.rows {
            let text = table
                .header
                .iter()
                .zip(&row.cells)
                .map(|(name, value)| {
                    if name.is_empty() {
                        value.clone()
                    } else {
                        format!("{name}: {value}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            self.add_table_passage(PassageKind::TableRow, text, caption.clone(), row.line);
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
        Ok(())
    }

    /// Tables keep their line breaks (one row a line), unlike prose passages.
    fn add_table_passage(
        &mut self,
        kind: PassageKind,
        text: String,
        context: Option<String>,
        line: usize,
    ) {
        self.push_passage(kind, text, context, line);
    }

    fn finish(mut self) -> Result<Guide, CorpusError> {
        self.end_paragraph()?;
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
