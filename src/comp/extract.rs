//! Turns a guide's compensation tables and comp figures in its prose into [`CompRecord`]s.
//!
//! Tables are recognized by their header (a company column and a base or total-comp column, in any
//! order and under several names). Prose is read conservatively: a figure becomes a record only when
//! it sits in a sentence about total comp, right after a known company or tier name, with nothing but
//! level and role words between them.

use super::aliases::CompanyAliases;
use super::money::{find_money_spans, is_blank_cell, parse_money, parse_money_cell};
use super::{normalize, CompRecord, MoneyRange, Origin};
use crate::corpus::CorpusError;
use crate::corpus::{Guide, PassageKind, Table};

/// What each column of a comp table holds, by index.
#[derive(Debug, Default)]
struct Columns {
    company: usize,
    level: Option<usize>,
    role: Option<usize>,
    base: Option<usize>,
    total: Option<usize>,
    notes: Option<usize>,
}

fn header_words(header: &str) -> String {
    // Drop "(USD)"-style qualifiers, keep letters and digits as space-separated words.
    let without_parens = match header.find('(') {
        Some(open) => &header[..open],
        None => header,
    };
    without_parens
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads a table header; `None` when the table is not about compensation.
fn comp_columns(header: &[String]) -> Option<Columns> {
    let mut columns = Columns::default();
    let mut company = None;
    for (index, cell) in header.iter().enumerate() {
        let words = header_words(cell);
        let has = |word: &str| words.split(' ').any(|w| w == word);
        if company.is_none()
            && (has("company")
                || has("employer")
                || has("organization")
                || has("organisation")
                || has("org")
                || has("firm")
                || has("lab"))
        {
            company = Some(index);
        } else if columns.total.is_none()
            && (has("total")
                || has("tc")
                || words == "comp"
                || words == "compensation"
                || words == "ote")
        {
            columns.total = Some(index);
        } else if columns.base.is_none() && (has("base") || has("salary")) {
            columns.base = Some(index);
        } else if columns.level.is_none()
            && (has("level") || has("band") || has("grade") || has("seniority"))
        {
            columns.level = Some(index);
        } else if columns.role.is_none()
            && (has("role")
                || has("track")
                || has("position")
                || has("title")
                || has("job")
                || has("discipline"))
        {
            columns.role = Some(index);
        } else if columns.notes.is_none()
            && (has("notes") || has("note") || has("comments") || has("remarks"))
        {
            columns.notes = Some(index);
        }
    }
    columns.company = company?;
    if columns.total.is_none() && columns.base.is_none() {
        return None;
    }
    Some(columns)
}

/// How a column is named in messages: "total comp", but acronyms like "TC" stay as written.
fn column_label(header: &str) -> String {
    let trimmed = header.trim();
    if trimmed.chars().any(|c| c.is_lowercase()) {
        trimmed.to_lowercase()
    } else {
        trimmed.to_string()
    }
}

/// Every record of one guide: its comp tables in document order, then its prose figures. A row
/// that cannot be read is left out, with a warning naming file and line, in `warnings`: one odd
/// row never takes the other figures (or the bot) down, and no figure is ever guessed.
pub(super) fn guide_records(
    guide: &Guide,
    aliases: &CompanyAliases,
    warnings: &mut Vec<String>,
) -> Vec<CompRecord> {
    let mut records = Vec::new();
    for table in &guide.tables {
        if let Some(columns) = comp_columns(&table.header) {
            table_records(guide, table, &columns, aliases, &mut records, warnings);
        }
    }
    let known: Vec<String> = records.iter().map(|r| r.company.clone()).collect();
    prose_records(guide, aliases, &known, &mut records);
    records
}

fn table_records(
    guide: &Guide,
    table: &Table,
    columns: &Columns,
    aliases: &CompanyAliases,
    out: &mut Vec<CompRecord>,
    warnings: &mut Vec<String>,
) {
    let as_of = guide.meta.as_of();
    let source = table
        .caption
        .as_deref()
        .and_then(|caption| named_source(caption, &as_of))
        .unwrap_or_else(|| fallback_source(guide));
    for row in &table.rows {
        match row_record(guide, table, columns, aliases, row, &as_of, &source) {
            Ok(record) => out.push(record),
            Err(error) => warnings.push(error.to_string()),
        }
    }
}

/// One table row as a record, or why it cannot be read.
fn row_record(
    guide: &Guide,
    table: &Table,
    columns: &Columns,
    aliases: &CompanyAliases,
    row: &crate::corpus::TableRow,
    as_of: &str,
    source: &str,
) -> Result<CompRecord, CorpusError> {
    {
        let fail = |message: String| CorpusError::invalid(&guide.path, row.line, message);
        let cell = |index: Option<usize>| -> &str {
            index
                .and_then(|i| row.cells.get(i))
                .map(|s| s.trim())
                .unwrap_or("")
        };
        let company_cell = cell(Some(columns.company));
        if company_cell.is_empty() {
            return Err(fail(format!(
                "the {} cell is empty; every comp row needs a company",
                column_label(&table.header[columns.company])
            )));
        }
        let money =
            |index: Option<usize>| -> Result<(Option<MoneyRange>, Vec<String>), CorpusError> {
                let Some(index) = index else {
                    return Ok((None, Vec::new()));
                };
                let text = cell(Some(index));
                if is_blank_cell(text) {
                    return Ok((None, Vec::new()));
                }
                let parsed = parse_money_cell(text).map_err(|why| {
                fail(format!(
                    "cannot read the {} cell {text:?} ({why}); write figures like \"$170k–$220k\", \"$185k\" or \"$700k+\"",
                    column_label(&table.header[index])
                ))
            })?;
                Ok((Some(parsed.range), parsed.notes))
            };
        let (base, base_notes) = money(columns.base)?;
        let (total, total_notes) = money(columns.total)?;
        if base.is_none() && total.is_none() {
            return Err(fail(format!(
                "the row for {company_cell:?} has no base or total comp figure"
            )));
        }

        let (company_name, company_role) = split_company(company_cell, aliases);
        let level_cell = cell(columns.level);
        let (level, level_role) = split_level(level_cell, aliases);
        let role = match columns.role.map(|i| cell(Some(i))) {
            Some(text) if !text.is_empty() => {
                Some(aliases.role_code(text).unwrap_or_else(|| text.to_string()))
            }
            _ => company_role.or(level_role),
        };
        let mut notes = base_notes;
        notes.extend(total_notes);
        let notes_cell = cell(columns.notes);
        if !notes_cell.is_empty() {
            notes.push(notes_cell.to_string());
        }
        let quote = guide
            .passages
            .iter()
            .find(|p| p.kind == PassageKind::TableRow && p.line == row.line)
            .map(|p| p.text.clone())
            .unwrap_or_else(|| {
                table
                    .header
                    .iter()
                    .zip(&row.cells)
                    .map(|(h, c)| format!("{h}: {c}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            });
        Ok(CompRecord {
            company: company_name,
            role,
            level,
            level_text: level_cell.to_string(),
            base,
            total,
            notes,
            guide: guide.meta.slug.clone(),
            guide_title: guide.meta.title.clone(),
            section_id: table.section_id.clone(),
            heading: table.heading.clone(),
            as_of: as_of.to_string(),
            source: source.to_string(),
            origin: Origin::Table,
            quote,
            path: guide.path.display().to_string(),
            line: row.line,
            duplicate: false,
        })
    }
}

/// "Meta DS" → ("Meta", Some("DS")); "Scale AI" → ("Scale AI", None). Aliases canonicalize the name.
fn split_company(cell: &str, aliases: &CompanyAliases) -> (String, Option<String>) {
    let mut words: Vec<&str> = cell.split_whitespace().collect();
    let mut role = None;
    while words.len() > 1 {
        match aliases.role_code(words[words.len() - 1]) {
            Some(code) if role.is_none() => {
                role = Some(code);
                words.pop();
            }
            _ => break,
        }
    }
    let name = words.join(" ");
    let canonical = aliases.canonical(&name).map(str::to_string).unwrap_or(name);
    (canonical, role)
}

/// "mid MLE" → (Some("mid"), Some("MLE")); "MTS-3 (mid)" → (Some("MTS-3"), Some("MTS")); "MTS (mid)"
/// → (Some("MTS"), Some("MTS")): a role word is only taken out of the level when a level remains.
fn split_level(cell: &str, aliases: &CompanyAliases) -> (Option<String>, Option<String>) {
    let outside = match cell.find('(') {
        Some(open) => &cell[..open],
        None => cell,
    };
    let words: Vec<&str> = outside.split_whitespace().collect();
    let mut role = None;
    let mut level_words = Vec::new();
    for word in &words {
        match aliases.role_code(word) {
            Some(code) if role.is_none() && words.len() > 1 => role = Some(code),
            _ => level_words.push(*word),
        }
    }
    let level = (!level_words.is_empty()).then(|| level_words.join(" "));
    if role.is_none() {
        // "MTS-3" and "MTS" name the track too.
        if let Some(level) = &level {
            let head = level.split(['-', ' ']).next().unwrap_or("");
            role = aliases.role_code(head);
        }
    }
    (level, role)
}

/// The source a caption or sentence names: "per levels.fyi" → "levels.fyi 2026" (the year from the
/// text, else the guide's as-of date).
pub(super) fn named_source(text: &str, as_of: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    for (index, word) in words.iter().enumerate() {
        let lowered = word.trim_start_matches('(').to_lowercase();
        let next = if lowered == "per" || lowered == "source:" || lowered == "sources:" {
            index + 1
        } else if lowered == "according" && words.get(index + 1) == Some(&"to") {
            index + 2
        } else {
            continue;
        };
        let Some(name) = words.get(next) else {
            continue;
        };
        let name = name.trim_matches(|c: char| matches!(c, '(' | ')' | ':' | ';' | ',' | '.'));
        let looks_named = name.contains('.')
            || name
                .chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
        if name.is_empty() || !looks_named {
            continue;
        }
        let year = words
            .get(next + 1)
            .map(|w| w.trim_matches(|c: char| !c.is_ascii_digit()).to_string());
        return Some(match year {
            Some(year) if year.len() == 4 => format!("{name} {year}"),
            _ => format!("{name} {as_of}"),
        });
    }
    None
}

/// The guide's first listed source, or its title when it lists none.
fn fallback_source(guide: &Guide) -> String {
    guide
        .meta
        .sources
        .first()
        .map(|s| s.trim().trim_end_matches('.').to_string())
        .unwrap_or_else(|| guide.meta.title.clone())
}

pub(super) const SENIORITY_WORDS: &[&str] = &[
    "junior",
    "mid",
    "midlevel",
    "senior",
    "staff",
    "principal",
    "entry",
    "entrylevel",
    "newgrad",
    "new grad",
    "new graduate",
    "entry level",
    "intern",
    "lead",
];

const FILLER_WORDS: &[&str] = &[
    "total",
    "comp",
    "compensation",
    "tc",
    "clusters",
    "cluster",
    "sit",
    "sits",
    "is",
    "are",
    "at",
    "around",
    "about",
    "typically",
    "pays",
    "pay",
    "ranges",
    "range",
    "band",
    "bands",
    "the",
    "level",
];

/// Whether a word reads as a level code: "E4", "L5", "IC4", "MTS-3".
pub(super) fn is_level_code(word: &str) -> bool {
    let (letters, digits) = match word.find(|c: char| c.is_ascii_digit()) {
        Some(index) => word.split_at(index),
        None => return false,
    };
    let letters = letters.trim_end_matches('-');
    !letters.is_empty()
        && letters.len() <= 4
        && letters.chars().all(|c| c.is_ascii_alphabetic())
        && !digits.is_empty()
        && digits.len() <= 2
        && digits.chars().all(|c| c.is_ascii_digit())
}

fn prose_records(
    guide: &Guide,
    aliases: &CompanyAliases,
    table_companies: &[String],
    out: &mut Vec<CompRecord>,
) {
    let as_of = guide.meta.as_of();
    for passage in &guide.passages {
        if !matches!(passage.kind, PassageKind::Paragraph | PassageKind::ListItem) {
            continue;
        }
        for sentence in sentences(&passage.text) {
            let lowered = sentence.to_lowercase();
            if !(lowered.contains("total comp") || lowered.contains(" tc ")) {
                continue;
            }
            let sentence_source = named_source(sentence, &as_of);
            for clause in split_outside_parens(sentence, &[';', ',']) {
                let Some(found) = read_clause(clause, aliases, table_companies) else {
                    continue;
                };
                let source = found
                    .reference
                    .clone()
                    .or_else(|| named_source(clause, &as_of))
                    .or_else(|| sentence_source.clone())
                    .unwrap_or_else(|| fallback_source(guide));
                out.push(CompRecord {
                    company: found.company,
                    role: found.role,
                    level: found.level.clone(),
                    level_text: found.level.unwrap_or_default(),
                    base: None,
                    total: Some(found.total),
                    notes: found.notes,
                    guide: guide.meta.slug.clone(),
                    guide_title: guide.meta.title.clone(),
                    section_id: passage.section_id.clone(),
                    heading: passage.heading.clone(),
                    as_of: as_of.clone(),
                    source,
                    origin: Origin::Prose,
                    quote: clause.trim().trim_end_matches('.').to_string(),
                    path: guide.path.display().to_string(),
                    line: passage.line,
                    duplicate: false,
                });
            }
        }
    }
}

/// Splits prose at sentence ends (". ", "? ", "! ") outside parentheses.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((index, character)) = chars.next() {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '.' | '?' | '!'
                if depth == 0 && chars.peek().is_none_or(|(_, next)| next.is_whitespace()) =>
            {
                let end = index + character.len_utf8();
                out.push(text[start..end].trim());
                start = end;
            }
            _ => {}
        }
    }
    if start < text.len() && !text[start..].trim().is_empty() {
        out.push(text[start..].trim());
    }
    out
}

fn split_outside_parens<'a>(text: &'a str, separators: &[char]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match character {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && separators.contains(&c) => {
                out.push(&text[start..index]);
                start = index + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

struct ProseFigure {
    company: String,
    role: Option<String>,
    level: Option<String>,
    total: MoneyRange,
    notes: Vec<String>,
    reference: Option<String>,
}

/// Reads one clause like "Meta E4 DS $300k–$420k (levels.fyi/...)"; `None` unless unambiguous.
fn read_clause(
    clause: &str,
    aliases: &CompanyAliases,
    table_companies: &[String],
) -> Option<ProseFigure> {
    let clause = clause.trim().trim_end_matches(['.', ':']);
    let spans = find_money_spans(clause);
    let [(start, end)] = spans.as_slice() else {
        return None;
    };
    let total = parse_money(&clause[*start..*end]).ok()?;

    // Before the figure: the name, level and role words, plus any parenthetical (kept as a note).
    let mut notes = Vec::new();
    let mut label = String::new();
    for (index, part) in split_parens(&clause[..*start]).into_iter().enumerate() {
        if index % 2 == 1 {
            notes.push(part.trim().to_string());
        } else {
            label.push_str(part);
            label.push(' ');
        }
    }
    // After the figure: nothing, a parenthetical, or a "per <source>" phrase.
    let after = clause[*end..].trim();
    let mut reference = None;
    if let Some(inner) = after.strip_prefix('(').and_then(|a| a.strip_suffix(')')) {
        if inner.contains('(') || inner.contains(')') {
            return None;
        }
        if looks_like_reference(inner) {
            reference = Some(inner.trim().to_string());
        } else {
            notes.push(inner.trim().to_string());
        }
    } else if !(after.is_empty() || after.to_lowercase().starts_with("per ")) {
        return None;
    }

    let words: Vec<&str> = label.split_whitespace().collect();
    let (company, used) = known_company(&words, aliases, table_companies)?;
    let mut role = None;
    let mut level_words = Vec::new();
    for word in &words[used..] {
        let key = normalize(word);
        if let Some(code) = aliases.role_code(word) {
            if role.replace(code).is_some() {
                return None;
            }
        } else if is_level_code(word) || SENIORITY_WORDS.contains(&key.as_str()) {
            level_words.push(*word);
        } else if !FILLER_WORDS.contains(&key.as_str()) {
            return None;
        }
    }
    let level = (!level_words.is_empty()).then(|| level_words.join(" "));
    if role.is_none() {
        if let Some(level) = &level {
            let head = level.split(['-', ' ']).next().unwrap_or("");
            if is_level_code(level) {
                role = aliases.role_code(head);
            }
        }
    }
    Some(ProseFigure {
        company,
        role,
        level,
        total,
        notes,
        reference,
    })
}

/// Alternating outside / inside-parentheses pieces: even indexes outside, odd inside.
fn split_parens(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match character {
            '(' => {
                if depth == 0 {
                    parts.push(&text[start..index]);
                    start = index + 1;
                }
                depth += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&text[start..index]);
                    start = index + 1;
                }
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn looks_like_reference(text: &str) -> bool {
    text.split_whitespace().next().is_some_and(|first| {
        first.contains('/')
            || [".com", ".fyi", ".io", ".org", ".ai", ".net", ".co"]
                .iter()
                .any(|tld| first.contains(tld))
    })
}

/// The company the label starts with (1 to 3 words): a table company or a name from the alias file.
fn known_company(
    words: &[&str],
    aliases: &CompanyAliases,
    table_companies: &[String],
) -> Option<(String, usize)> {
    for used in (1..=words.len().min(3)).rev() {
        let candidate = words[..used].join(" ");
        if let Some(canonical) = aliases.canonical(&candidate) {
            return Some((canonical.to_string(), used));
        }
        let key = normalize(&candidate);
        if let Some(name) = table_companies.iter().find(|name| normalize(name) == key) {
            return Some((name.clone(), used));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases() -> CompanyAliases {
        CompanyAliases::parse(
            std::path::Path::new("a.toml"),
            "[companies]\nMeta = [\"fb\"]\n\"FAANG-tier\" = [\"faang\"]\n\"AI-labs\" = [\"ai labs\"]\n",
        )
        .unwrap()
    }

    #[test]
    fn headers_in_any_order_and_wording_are_recognized() {
        let header: Vec<String> = ["Level", "Company", "TC", "Base salary"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let columns = comp_columns(&header).unwrap();
        assert_eq!(
            (columns.company, columns.level, columns.total, columns.base),
            (1, Some(0), Some(2), Some(3))
        );
        let other: Vec<String> = ["Tool", "Use"].iter().map(|s| s.to_string()).collect();
        assert!(comp_columns(&other).is_none());
    }

    #[test]
    fn cells_split_into_company_role_and_level() {
        let aliases = aliases();
        assert_eq!(
            split_company("Meta DS", &aliases),
            ("Meta".to_string(), Some("DS".to_string()))
        );
        assert_eq!(
            split_company("Scale AI", &aliases),
            ("Scale AI".to_string(), None)
        );
        assert_eq!(split_company("fb", &aliases), ("Meta".to_string(), None));
        assert_eq!(
            split_level("mid MLE", &aliases),
            (Some("mid".to_string()), Some("MLE".to_string()))
        );
        assert_eq!(
            split_level("MTS-3 (mid)", &aliases),
            (Some("MTS-3".to_string()), Some("MTS".to_string()))
        );
        assert_eq!(
            split_level("mid", &aliases),
            (Some("mid".to_string()), None)
        );
        assert_eq!(split_level("", &aliases), (None, None));
    }

    #[test]
    fn sources_come_from_per_phrases() {
        assert_eq!(
            named_source("Total comp in 2026 (US, per levels.fyi):", "2026").as_deref(),
            Some("levels.fyi 2026")
        );
        assert_eq!(
            named_source("clusters $1 per levels.fyi 2025 data", "2026").as_deref(),
            Some("levels.fyi 2025")
        );
        assert_eq!(named_source("ten per cent", "2026"), None);
    }

    #[test]
    fn only_unambiguous_prose_clauses_become_records() {
        let aliases = aliases();
        let known = vec!["Anthropic".to_string(), "OpenAI".to_string()];
        let read = |clause: &str| read_clause(clause, &aliases, &known);
        let faang = read("FAANG-tier mid total comp $250k–$380k per levels.fyi 2026").unwrap();
        assert_eq!(faang.company, "FAANG-tier");
        assert_eq!(faang.level.as_deref(), Some("mid"));
        assert_eq!((faang.total.min, faang.total.max), (250_000, Some(380_000)));
        let labs = read(" AI-labs (Anthropic MTS-3, OpenAI MTS-mid) sit $400k–$700k+.").unwrap();
        assert_eq!(labs.company, "AI-labs");
        assert_eq!(
            labs.notes,
            vec!["Anthropic MTS-3, OpenAI MTS-mid".to_string()]
        );
        let anthropic =
            read("Anthropic MTS-3 $450k–$700k+ (anthropic.com/careers leveling)").unwrap();
        assert_eq!(anthropic.role.as_deref(), Some("MTS"));
        assert_eq!(
            anthropic.reference.as_deref(),
            Some("anthropic.com/careers leveling")
        );
        assert!(read("OpenAI and Anthropic mid-level MTS commonly clears $500k+").is_none());
        assert!(read("Cost discipline ($280 of compute for v3").is_none());
        assert!(read("Meta pays $1M to $2M").is_none());
        assert!(read("Unknown Co mid $200k–$300k").is_none());
    }

    #[test]
    fn sentences_split_outside_parentheses() {
        assert_eq!(
            sentences("A (b. c) d. E f levels.fyi g. H"),
            vec!["A (b. c) d.", "E f levels.fyi g.", "H"]
        );
    }
}
