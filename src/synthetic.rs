//! Synthetic corpora for benchmarks and load tests: many guides derived from a real one.
//!
//! [`write_synthetic_corpus`] writes guide files that look like the real guide to the loader and the
//! index (same headings, prose, lists and tables, same vocabulary) but vary it: sections are numbered
//! and repeated, sentences and list items are shuffled, and company names and dollar figures are
//! swapped among the ones the guide itself uses. The output is deterministic (a fixed seed per file),
//! so two runs produce byte-identical folders and the same index fingerprint.
//!
//! Nothing in the bot uses this module; it exists so benches (`benches/search.rs`) and tools
//! (`examples/search_latency.rs`) can measure search on a corpus of 100,000+ passages.

use crate::corpus::{parse_guide_bytes, Corpus, Guide, PassageKind, VOCABULARY_FILE_NAME};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

/// Times each source section is repeated (with a new number and new shuffles) in one synthetic file.
const ROUNDS_PER_FILE: usize = 8;
/// Seed of the generator; file `n` uses `SEED ^ n`.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// What [`write_synthetic_corpus`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticSummary {
    pub dir: PathBuf,
    /// Guide files written (each with its own slug).
    pub guides: usize,
    /// Passages in those files, as the loader counts them.
    pub passages: usize,
    /// Bytes of Markdown written.
    pub bytes: u64,
}

/// Writes guide files derived from `source` into `dir` (created if needed) until they hold at least
/// `target_passages` passages, and copies the source's vocabulary file. Files already in `dir` with
/// the same names are overwritten; other files are left alone.
pub fn write_synthetic_corpus(
    source: &Corpus,
    dir: &Path,
    target_passages: usize,
) -> io::Result<SyntheticSummary> {
    std::fs::create_dir_all(dir)?;
    let templates: Vec<GuideTemplate> = source
        .guides
        .iter()
        .map(GuideTemplate::from_guide)
        .collect();
    if templates
        .iter()
        .all(|template| template.sections.is_empty())
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the source corpus has no sections to derive guides from",
        ));
    }
    let mut summary = SyntheticSummary {
        dir: dir.to_path_buf(),
        guides: 0,
        passages: 0,
        bytes: 0,
    };
    let mut number = 0usize;
    while summary.passages < target_passages.max(1) {
        let template = &templates[number % templates.len()];
        number += 1;
        if template.sections.is_empty() {
            continue;
        }
        let mut rng = XorShift::new(SEED ^ (number as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let text = template.render(number, &mut rng);
        let path = dir.join(format!("{}-synthetic-{number:05}.md", template.slug));
        // Count passages as the loader does, and refuse to write a file the loader would reject.
        let guide = parse_guide_bytes(&path, text.as_bytes())
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
        std::fs::write(&path, &text)?;
        summary.guides += 1;
        summary.passages += guide.passages.len();
        summary.bytes += text.len() as u64;
    }
    let vocabulary = source.dir.join(VOCABULARY_FILE_NAME);
    if vocabulary.exists() {
        std::fs::copy(&vocabulary, dir.join(VOCABULARY_FILE_NAME))?;
    }
    Ok(summary)
}

/// A source guide cut into what a synthetic file is rendered from.
struct GuideTemplate {
    slug: String,
    title: String,
    author: String,
    year: Option<u16>,
    sources: Vec<String>,
    sections: Vec<SectionTemplate>,
    companies: Vec<String>,
    figures: Vec<String>,
}

struct SectionTemplate {
    level: u8,
    heading: String,
    blocks: Vec<Block>,
}

enum Block {
    Paragraph(String),
    List(Vec<String>),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Code(String),
}

impl GuideTemplate {
    fn from_guide(guide: &Guide) -> GuideTemplate {
        let mut sections = Vec::new();
        for section in &guide.sections {
            let mut blocks: Vec<Block> = Vec::new();
            for passage in guide.passages_of(&section.id) {
                match passage.kind {
                    PassageKind::Paragraph => {
                        blocks.push(Block::Paragraph(one_line(&passage.text)))
                    }
                    PassageKind::ListItem => match blocks.last_mut() {
                        Some(Block::List(items)) => items.push(one_line(&passage.text)),
                        _ => blocks.push(Block::List(vec![one_line(&passage.text)])),
                    },
                    PassageKind::Table => {
                        if let Some(table) = guide.tables.iter().find(|table| {
                            table.section_id == section.id && table.line == passage.line
                        }) {
                            blocks.push(Block::Table {
                                header: table.header.clone(),
                                rows: table.rows.iter().map(|row| row.cells.clone()).collect(),
                            });
                        }
                    }
                    PassageKind::TableRow => {}
                    PassageKind::Code => blocks.push(Block::Code(passage.text.clone())),
                }
            }
            // The guide's title heading is rendered once per file; passages right under it (if any)
            // become a numbered section like the others.
            if section.level <= 1 && blocks.is_empty() {
                continue;
            }
            sections.push(SectionTemplate {
                level: section.level.max(2),
                heading: section.heading.clone(),
                blocks,
            });
        }
        // Company names: the first cell of every table row, without trailing role abbreviations
        // ("Meta DS" → "Meta", "Hugging Face" stays).
        let mut companies = BTreeSet::new();
        for table in &guide.tables {
            for row in &table.rows {
                let Some(first) = row.cells.first() else {
                    continue;
                };
                let mut words: Vec<&str> = first.split_whitespace().collect();
                while words.len() > 1
                    && words.last().is_some_and(|word| {
                        word.len() <= 4 && word.chars().all(|c| c.is_ascii_uppercase())
                    })
                {
                    words.pop();
                }
                let name = words.join(" ");
                if name.chars().count() >= 3 {
                    companies.insert(name);
                }
            }
        }
        let mut figures = BTreeSet::new();
        for passage in &guide.passages {
            figures.extend(dollar_figures(&passage.text));
        }
        GuideTemplate {
            slug: guide.meta.slug.clone(),
            title: guide.meta.title.clone(),
            author: guide.meta.author.clone(),
            year: guide.meta.year,
            sources: guide.meta.sources.clone(),
            sections,
            companies: companies.into_iter().collect(),
            figures: figures.into_iter().collect(),
        }
    }

    fn render(&self, number: usize, rng: &mut XorShift) -> String {
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("+++\n");
        out.push_str(&format!(
            "title = {}\n",
            toml_string(&format!("{} (synthetic {number})", self.title))
        ));
        out.push_str(&format!("slug = \"{}-synthetic-{number:05}\"\n", self.slug));
        out.push_str(&format!("author = {}\n", toml_string(&self.author)));
        if let Some(year) = self.year {
            out.push_str(&format!("year = {year}\n"));
        }
        out.push_str("sources = [\n");
        for source in &self.sources {
            out.push_str(&format!("  {},\n", toml_string(source)));
        }
        out.push_str("]\n+++\n\n");
        out.push_str(&format!("# {} (synthetic {number})\n\n", self.title));

        let swaps = Swaps::new(&self.companies, &self.figures, rng);
        for round in 1..=ROUNDS_PER_FILE {
            let mut subsection = 0;
            let mut section_number = 0;
            for section in &self.sections {
                let prefix = if section.level <= 2 {
                    section_number += 1;
                    subsection = 0;
                    format!("{round}.{section_number}")
                } else {
                    subsection += 1;
                    format!("{round}.{section_number}.{subsection}")
                };
                let hashes = "#".repeat(usize::from(section.level.min(6)));
                out.push_str(&format!(
                    "{hashes} {prefix} {}\n\n",
                    swaps.apply(&section.heading)
                ));
                for block in &section.blocks {
                    render_block(&mut out, block, &swaps, rng);
                }
            }
        }
        out
    }
}

fn render_block(out: &mut String, block: &Block, swaps: &Swaps, rng: &mut XorShift) {
    match block {
        Block::Paragraph(text) => {
            out.push_str(&guard_line_start(
                &swaps.apply(&shuffle_sentences(text, rng)),
            ));
            out.push_str("\n\n");
        }
        Block::List(items) => {
            let mut items: Vec<&String> = items.iter().collect();
            rng.shuffle(&mut items);
            for item in items {
                out.push_str("- ");
                out.push_str(&guard_line_start(
                    &swaps.apply(&shuffle_sentences(item, rng)),
                ));
                out.push('\n');
            }
            out.push('\n');
        }
        Block::Table { header, rows } => {
            out.push_str(&table_row(header, swaps));
            out.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
            let mut rows: Vec<&Vec<String>> = rows.iter().collect();
            rng.shuffle(&mut rows);
            for row in rows {
                out.push_str(&table_row(row, swaps));
            }
            out.push('\n');
        }
        Block::Code(code) => {
            out.push_str("```\n");
            out.push_str(&code.replace("```", "'''"));
            if !code.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("```\n\n");
        }
    }
}

fn table_row(cells: &[String], swaps: &Swaps) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|cell| one_line(&swaps.apply(cell)).replace('|', "\\|"))
        .collect();
    format!("| {} |\n", cells.join(" | "))
}

/// A consistent renaming for one file: companies permuted among companies, figures among figures.
struct Swaps {
    /// (from, to), longest `from` first so "Hugging Face" wins over a shorter name at the same place.
    pairs: Vec<(String, String)>,
}

impl Swaps {
    fn new(companies: &[String], figures: &[String], rng: &mut XorShift) -> Swaps {
        let mut pairs = Vec::new();
        for group in [companies, figures] {
            let mut shuffled: Vec<&String> = group.iter().collect();
            rng.shuffle(&mut shuffled);
            pairs.extend(group.iter().cloned().zip(shuffled.into_iter().cloned()));
        }
        pairs.retain(|(from, to)| from != to);
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Swaps { pairs }
    }

    /// Replaces every occurrence at once (a replaced name is never replaced again), at word edges.
    fn apply(&self, text: &str) -> String {
        if self.pairs.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut index = 0;
        let mut previous: Option<char> = None;
        'scan: while index < text.len() {
            let rest = &text[index..];
            let at_word_edge = previous.is_none_or(|c| !c.is_alphanumeric());
            if at_word_edge {
                for (from, to) in &self.pairs {
                    if rest.starts_with(from.as_str()) {
                        let after = rest[from.len()..].chars().next();
                        let ends_word = after.is_none_or(|c| !c.is_alphanumeric())
                            || !from.chars().last().is_some_and(char::is_alphanumeric);
                        if ends_word {
                            out.push_str(to);
                            index += from.len();
                            previous = from.chars().last();
                            continue 'scan;
                        }
                    }
                }
            }
            let Some(character) = rest.chars().next() else {
                break;
            };
            out.push(character);
            index += character.len_utf8();
            previous = Some(character);
        }
        out
    }
}

/// Dollar figures as written ("$280", "$170k", "$1M", "$700k+").
fn dollar_figures(text: &str) -> Vec<String> {
    let mut figures = Vec::new();
    for (start, _) in text.match_indices('$') {
        let rest = &text[start + 1..];
        let digits = rest
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_digit() || *c == '.' || *c == ',')
            .last()
            .map(|(index, c)| index + c.len_utf8())
            .unwrap_or(0);
        if digits == 0 || !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let mut end = digits;
        if rest[end..].starts_with(['k', 'K', 'M', 'B']) {
            end += 1;
        }
        if rest[end..].starts_with('+') {
            end += 1;
        }
        let figure = text[start..start + 1 + end]
            .trim_end_matches(['.', ','])
            .to_string();
        if figure.len() > 1 {
            figures.push(figure);
        }
    }
    figures
}

/// Sentences of `text` in a new order (about half the time; a one-sentence text stays as is).
fn shuffle_sentences(text: &str, rng: &mut XorShift) -> String {
    let mut sentences: Vec<&str> = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (index, _) in text.match_indices(". ") {
        let next = bytes.get(index + 2).copied().unwrap_or(b' ');
        if next.is_ascii_uppercase() {
            sentences.push(&text[start..=index]);
            start = index + 2;
        }
    }
    sentences.push(&text[start..]);
    if sentences.len() < 2 || rng.next().is_multiple_of(2) {
        return text.to_string();
    }
    rng.shuffle(&mut sentences);
    sentences.join(" ")
}

/// Escapes what would make a line start a heading, list, quote, table or code block in Markdown.
fn guard_line_start(text: &str) -> String {
    let text = text.trim();
    let starts_block = text.starts_with(['#', '>', '-', '+', '*', '|', '=', '`', '~', '<', '_']);
    if starts_block {
        return format!("\\{text}");
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && text[digits..].starts_with(['.', ')']) {
        return format!("{}\\{}", &text[..digits], &text[digits..]);
    }
    text.to_string()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// xorshift64*: tiny, fast, deterministic; not for anything but shuffling test data.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { SEED } else { seed })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            let other = (self.next() % (index as u64 + 1)) as usize;
            items.swap(index, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_found_as_written() {
        assert_eq!(
            dollar_figures("cost: ~$280 in compute; $170k–$220k, $700k+ and $1M."),
            vec!["$280", "$170k", "$220k", "$700k+", "$1M"]
        );
    }

    #[test]
    fn swaps_replace_whole_words_once() {
        let swaps = Swaps {
            pairs: vec![
                ("Meta".to_string(), "Google".to_string()),
                ("Google".to_string(), "Meta".to_string()),
            ],
        };
        assert_eq!(
            swaps.apply("Meta and Google, not Metadata"),
            "Google and Meta, not Metadata"
        );
    }

    #[test]
    fn line_starts_are_escaped() {
        assert_eq!(guard_line_start("# not a heading"), "\\# not a heading");
        assert_eq!(guard_line_start("1. not a list"), "1\\. not a list");
        assert_eq!(guard_line_start("plain"), "plain");
    }

    #[test]
    fn synthetic_corpus_loads_and_is_deterministic() {
        let source = Corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")).unwrap();
        let temp = tempfile::tempdir().unwrap();
        let (first, second) = (temp.path().join("a"), temp.path().join("b"));
        let summary = write_synthetic_corpus(&source, &first, 1000).unwrap();
        write_synthetic_corpus(&source, &second, 1000).unwrap();
        let corpus = Corpus::load(&first).unwrap();
        assert!(summary.passages >= 1000);
        assert_eq!(corpus.passages().count(), summary.passages);
        assert_eq!(corpus.guides.len(), summary.guides);
        assert_eq!(
            corpus.fingerprint,
            Corpus::load(&second).unwrap().fingerprint
        );
        assert_eq!(
            corpus.vocabulary.synonyms.len(),
            source.vocabulary.synonyms.len()
        );
    }
}
