//! The guides as data: Markdown files with TOML front matter, loaded into sections and quotable passages.
//!
//! Everything above this module works with [`Corpus`], [`Guide`], [`Section`] and [`Passage`]; nothing
//! here knows about the index, answers or Discord. Loading is strict: a broken file is an error that
//! names the file (and line where there is one), never a silent skip, because a guide that silently
//! lost a section would make the bot confidently wrong.

mod markdown;
pub mod sentences;
mod vocabulary;

pub use vocabulary::{Vocabulary, VocabularyGroup};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The file, next to the guides, that holds the field's synonyms and abbreviations.
pub const VOCABULARY_FILE_NAME: &str = "vocabulary.toml";

/// Why a corpus (its guides, vocabulary, comp tables or company aliases) could not be loaded.
/// Every variant names the file so a maintainer can fix it.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "no guides (*.md files) found in {dir}: point --corpus at the folder holding the guides"
    )]
    NoGuides { dir: PathBuf },
    #[error("{path} is {size} bytes, over the {limit}-byte limit for a guide file (paths.max_guide_bytes / GUIDEBOT_MAX_GUIDE_BYTES)")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("the guides and data files in {dir} total {size} bytes, over the {limit}-byte limit for the whole corpus: raise paths.max_corpus_bytes (GUIDEBOT_MAX_CORPUS_BYTES), or remove guides")]
    CorpusTooLarge { dir: PathBuf, size: u64, limit: u64 },
    #[error(
        "{path} is not a regular file (a pipe, a device or a folder); only regular files are read"
    )]
    NotAFile { path: PathBuf },
    #[error("{path}: slug {slug:?} is already used by {other}; every guide needs its own slug")]
    DuplicateSlug {
        path: PathBuf,
        slug: String,
        other: PathBuf,
    },
}

impl CorpusError {
    pub(crate) fn invalid(path: &Path, line: usize, message: impl Into<String>) -> Self {
        CorpusError::Invalid {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// The front matter of a guide: who wrote it, when, and what it cites. Shown by `/about` and stamped on
/// answers so readers know how fresh the figures are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuideMeta {
    pub title: String,
    pub slug: String,
    /// Empty when the guide does not say (a guide dropped in without front matter).
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub year: Option<u16>,
    #[serde(default)]
    pub publisher: Option<String>,
    /// The date the guide's figures are as of ("2026"); defaults to the year.
    #[serde(default)]
    pub as_of: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
}

impl GuideMeta {
    /// The as-of date of the guide's data, falling back to its year ("undated" without either).
    pub fn as_of(&self) -> String {
        match (&self.as_of, self.year) {
            (Some(as_of), _) => as_of.clone(),
            (None, Some(year)) => year.to_string(),
            (None, None) => "undated".to_string(),
        }
    }
}

/// One guide: its metadata, its sections in document order, and the passages cut from them.
#[derive(Debug, Clone)]
pub struct Guide {
    pub meta: GuideMeta,
    pub path: PathBuf,
    pub sections: Vec<Section>,
    pub passages: Vec<Passage>,
    pub tables: Vec<Table>,
    /// What the loader derived or skipped in this file ("file:line: message").
    pub warnings: Vec<String>,
}

impl Guide {
    /// The section with this id, if the guide has one.
    pub fn section(&self, section_id: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|section| section.id == section_id)
    }

    /// The passages of one section, in document order.
    pub fn passages_of<'a>(
        &'a self,
        section_id: &'a str,
    ) -> impl Iterator<Item = &'a Passage> + 'a {
        self.passages
            .iter()
            .filter(move |passage| passage.section_id == section_id)
    }
}

/// A heading and what sits under it (up to the next heading of any level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    /// Stable slug of the heading, unique within its guide ("compensation-the-real-bands-at-mid").
    pub id: String,
    pub heading: String,
    /// Headings from the guide's title down to this one, for breadcrumbs in citations.
    pub heading_path: Vec<String>,
    pub level: u8,
    /// 1-based line of the heading in the guide's file.
    pub line: usize,
}

/// What kind of block a passage was cut from; tables and rows are rendered differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassageKind {
    Paragraph,
    ListItem,
    Table,
    TableRow,
    Code,
}

impl PassageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PassageKind::Paragraph => "paragraph",
            PassageKind::ListItem => "list_item",
            PassageKind::Table => "table",
            PassageKind::TableRow => "table_row",
            PassageKind::Code => "code",
        }
    }
}

/// The unit of retrieval and citation: small enough to quote, whole enough to read alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Passage {
    /// Unique across the corpus: "{guide slug}/{section id}/{ordinal}".
    pub id: String,
    pub guide_slug: String,
    pub guide_title: String,
    pub section_id: String,
    pub heading: String,
    pub heading_path: Vec<String>,
    /// The question the passage answers when the guide asks it in bold text under the heading
    /// ("**What is regression?**") rather than as a heading of its own.
    pub subheading: Option<String>,
    pub kind: PassageKind,
    /// The quotable text, exactly as the guide words it (inline Markdown syntax removed). One
    /// line per unit: a paragraph is one line; a list passage has one line per item (children
    /// after their parent); a table has its header and rows (cells joined by " | ").
    pub text: String,
    /// What the passage needs to be read alone: a list's lead-in, a split item's parent, a table
    /// row's header.
    pub context: Option<String>,
    /// 1-based line where the passage starts in the guide's file.
    pub line: usize,
}

impl Passage {
    /// Context and text together, as indexed and as shown when a passage is read alone.
    pub fn full_text(&self) -> String {
        match &self.context {
            Some(context) => format!("{context} {}", self.text),
            None => self.text.clone(),
        }
    }
}

/// A Markdown table kept with its structure, for the compensation records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub section_id: String,
    pub heading: String,
    /// The paragraph right before the table, which often says what the table is ("... in 2026 (US, per levels.fyi):").
    pub caption: Option<String>,
    pub header: Vec<String>,
    pub rows: Vec<TableRow>,
    pub line: usize,
}

/// One body row of a [`Table`], with the line it sits on so parse errors can name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRow {
    pub cells: Vec<String>,
    pub line: usize,
}

/// All guides of the hub plus the vocabulary, with a fingerprint of the files they came from.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub guides: Vec<Guide>,
    /// Things the loader derived or skipped ("file:line: message"); logged by whoever loads.
    pub warnings: Vec<String>,
    pub vocabulary: Vocabulary,
    /// SHA-256 over every file's name and bytes: changes whenever the corpus does.
    pub fingerprint: String,
    /// Passage id → (guide, passage) positions, for lookups by id on the answer path.
    passage_positions: std::collections::HashMap<String, (usize, usize)>,
    pub dir: PathBuf,
}

impl Corpus {
    /// Loads every `*.md` guide in `dir` (sorted by file name) and the optional vocabulary file.
    pub fn load(dir: &Path) -> Result<Corpus, CorpusError> {
        Corpus::load_dirs(dir, &[])
    }

    /// Loads the guides of `dir` and of each folder in `extra_dirs`, indexed together as one
    /// corpus. The vocabulary and the other data files come from `dir` only; the extra folders
    /// contribute guides (a hub keeping guides from several sources in their own folders).
    pub fn load_dirs(dir: &Path, extra_dirs: &[PathBuf]) -> Result<Corpus, CorpusError> {
        Corpus::load_with(dir, extra_dirs, &LoadLimits::default())
    }

    /// [`Corpus::load_dirs`] with explicit limits. Only regular files are read (a symlink is
    /// followed, then checked): a pipe or a device named `*.md` is skipped with a warning, never
    /// opened, so it cannot hang the load; a file over the size limit is an error naming it.
    pub fn load_with(
        dir: &Path,
        extra_dirs: &[PathBuf],
        limits: &LoadLimits,
    ) -> Result<Corpus, CorpusError> {
        let mut warnings = Vec::new();
        let mut guide_paths = guide_files(dir, &mut warnings)?;
        for extra in extra_dirs {
            guide_paths.extend(guide_files(extra, &mut warnings)?);
        }
        if guide_paths.is_empty() {
            return Err(CorpusError::NoGuides {
                dir: dir.to_path_buf(),
            });
        }

        // The whole corpus is held in memory (and indexed): its size is checked before anything
        // is read, and again as files are read (one that grew in between is caught there).
        let vocabulary_path = dir.join(VOCABULARY_FILE_NAME);
        let extra_files = extra_data_files(dir)?;
        let mut total = TotalSize::new(dir, limits.max_total_bytes);
        let all_files = guide_paths.iter().chain(&extra_files);
        let listed: u64 = all_files
            .chain(std::iter::once(&vocabulary_path))
            .filter_map(|path| std::fs::metadata(path).ok())
            .filter(std::fs::Metadata::is_file)
            .map(|meta| meta.len())
            .fold(0, u64::saturating_add);
        total.check(listed)?;

        let mut hasher = Sha256::new();
        let mut guides: Vec<Guide> = Vec::with_capacity(guide_paths.len());
        for path in &guide_paths {
            let bytes = total.read(path, limits.max_file_bytes)?;
            hash_file(&mut hasher, path, &bytes);
            let guide = parse_guide_bytes(path, &bytes)?;
            warnings.extend(guide.warnings.iter().cloned());
            if let Some(other) = guides.iter().find(|g| g.meta.slug == guide.meta.slug) {
                return Err(CorpusError::DuplicateSlug {
                    path: path.clone(),
                    slug: guide.meta.slug.clone(),
                    other: other.path.clone(),
                });
            }
            guides.push(guide);
        }

        let vocabulary = if vocabulary_path.exists() {
            let bytes = total.read(&vocabulary_path, limits.max_file_bytes)?;
            hash_file(&mut hasher, &vocabulary_path, &bytes);
            Vocabulary::parse(&vocabulary_path, &bytes)?
        } else {
            Vocabulary::default()
        };

        // Other data files beside the guides (company aliases, ...) feed the fingerprint too, so any
        // edit in the folder triggers a rebuild.
        for extra in extra_files {
            let bytes = total.read(&extra, limits.max_file_bytes)?;
            hash_file(&mut hasher, &extra, &bytes);
        }

        let passage_positions = guides
            .iter()
            .enumerate()
            .flat_map(|(guide_index, guide)| {
                guide
                    .passages
                    .iter()
                    .enumerate()
                    .map(move |(index, passage)| (passage.id.clone(), (guide_index, index)))
            })
            .collect();
        Ok(Corpus {
            passage_positions,
            guides,
            warnings,
            vocabulary,
            fingerprint: hex::encode(hasher.finalize()),
            dir: dir.to_path_buf(),
        })
    }

    /// Every passage of every guide, in guide then document order.
    pub fn passages(&self) -> impl Iterator<Item = &Passage> {
        self.guides.iter().flat_map(|guide| guide.passages.iter())
    }

    /// The guide with this slug.
    pub fn guide(&self, slug: &str) -> Option<&Guide> {
        self.guides.iter().find(|guide| guide.meta.slug == slug)
    }

    /// Looks a passage up by its id.
    pub fn passage(&self, passage_id: &str) -> Option<&Passage> {
        let &(guide, index) = self.passage_positions.get(passage_id)?;
        self.guides.get(guide)?.passages.get(index)
    }

    /// Whether `quote` is verbatim in the passage `passage_id` (within one of its lines, or across
    /// a line break of a table read as one space): the check an answer's citation passes before it
    /// is shown. Cheaper and stricter than [`Corpus::contains_quote`]: the quote must be in the
    /// passage it is cited from.
    pub fn passage_contains(&self, passage_id: &str, quote: &str) -> bool {
        let wanted = quote.trim();
        if wanted.is_empty() {
            return false;
        }
        self.passage(passage_id).is_some_and(|passage| {
            passage.text.contains(wanted)
                || (wanted.contains(char::is_whitespace)
                    && collapse_whitespace(&passage.text).contains(&collapse_whitespace(wanted)))
        })
    }

    /// Whether `quote` appears verbatim in some passage: the check every citation must pass before it
    /// is shown. Whitespace runs are compared as single spaces so a quote that crosses a line break
    /// still matches.
    pub fn contains_quote(&self, quote: &str) -> bool {
        let wanted = collapse_whitespace(quote);
        if wanted.is_empty() {
            return false;
        }
        // Prose passages are stored with whitespace already collapsed; only tables keep newlines.
        self.passages().any(|passage| {
            if passage.text.contains('\n') {
                collapse_whitespace(&passage.text).contains(&wanted)
            } else {
                passage.text.contains(&wanted)
            }
        })
    }
}

/// Collapses every whitespace run to one space and trims the ends.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses one guide from its bytes. `path` is used for error messages and stored on the guide.
pub fn parse_guide_bytes(path: &Path, bytes: &[u8]) -> Result<Guide, CorpusError> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let line = bytes[..error.valid_up_to()]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count()
            + 1;
        CorpusError::invalid(path, line, "the file is not valid UTF-8; save it as UTF-8")
    })?;
    markdown::parse_guide(path, text)
}

/// Turns a heading into a URL-safe id: lowercase letters and digits, words joined by '-'.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut pending_dash = false;
    for character in text.chars() {
        if character == '\'' || character == '’' {
            continue;
        }
        if character.is_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.extend(character.to_lowercase());
        } else {
            pending_dash = true;
        }
    }
    if slug.is_empty() {
        slug.push_str("section");
    }
    slug
}

/// How much a load may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Largest guide or data file, in bytes (`paths.max_guide_bytes`).
    pub max_file_bytes: u64,
    /// Largest corpus: every guide and data file together, in bytes (`paths.max_corpus_bytes`).
    /// What a load and its index hold in memory grows with it.
    pub max_total_bytes: u64,
}

/// The default limit on a guide file: a long guide is 100-200 KB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// The default limit on the whole corpus: hundreds of long guides (the bundled corpus is about
/// 60 KB), and a memory peak that fits a small container.
pub const DEFAULT_MAX_CORPUS_BYTES: u64 = 64 * 1024 * 1024;

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_CORPUS_BYTES,
        }
    }
}

/// The bytes a load has read so far, against the corpus limit.
struct TotalSize<'a> {
    dir: &'a Path,
    read: u64,
    limit: u64,
}

impl<'a> TotalSize<'a> {
    fn new(dir: &'a Path, limit: u64) -> Self {
        TotalSize {
            dir,
            read: 0,
            limit,
        }
    }

    /// Fails when `size` bytes in all are over the limit.
    fn check(&self, size: u64) -> Result<(), CorpusError> {
        if size > self.limit {
            return Err(CorpusError::CorpusTooLarge {
                dir: self.dir.to_path_buf(),
                size,
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Reads one file (at most `max_file_bytes`) and adds it to the total.
    fn read(&mut self, path: &Path, max_file_bytes: u64) -> Result<Vec<u8>, CorpusError> {
        let bytes = read_file(path, max_file_bytes)?;
        self.read = self.read.saturating_add(bytes.len() as u64);
        self.check(self.read)?;
        Ok(bytes)
    }
}

/// The guide files of one folder: every regular `*.md` file but a README, sorted by name; other
/// kinds of files named `*.md` are skipped with a warning.
fn guide_files(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<PathBuf>, CorpusError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CorpusError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut guide_paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CorpusError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "md")
            && !path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().eq_ignore_ascii_case("README.md"))
        {
            // `metadata` follows a symlink and never opens the file: a pipe cannot block here.
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => guide_paths.push(path),
                Ok(_) => warnings.push(format!(
                    "{}: not a regular file (a pipe, a device or a folder); skipped",
                    path.display()
                )),
                Err(error) => {
                    warnings.push(format!("{}: unreadable ({error}); skipped", path.display()))
                }
            }
        }
    }
    guide_paths.sort();
    Ok(guide_paths)
}

/// Reads a regular file of at most `limit` bytes (checked before and while reading, so a file
/// that grows, or a device behind a symlink, cannot exhaust memory).
fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, CorpusError> {
    use std::io::Read;
    let io = |source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(CorpusError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > limit {
        return Err(CorpusError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(CorpusError::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

fn hash_file(hasher: &mut Sha256, path: &Path, bytes: &[u8]) {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    hasher.update((name.len() as u64).to_le_bytes());
    hasher.update(name.as_bytes());
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// TOML data files beside the guides other than the vocabulary, sorted by name.
fn extra_data_files(dir: &Path) -> Result<Vec<PathBuf>, CorpusError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CorpusError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| std::fs::metadata(path).is_ok_and(|meta| meta.is_file()))
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "toml")
                && path
                    .file_name()
                    .is_some_and(|name| name != VOCABULARY_FILE_NAME)
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_joined_by_dashes() {
        assert_eq!(
            slugify("What's the dominant LLM stack at mid in 2026?"),
            "whats-the-dominant-llm-stack-at-mid-in-2026"
        );
        assert_eq!(
            slugify("Compensation: the real bands at mid"),
            "compensation-the-real-bands-at-mid"
        );
        assert_eq!(slugify("???"), "section");
    }

    #[test]
    fn whitespace_is_collapsed_for_quote_checks() {
        assert_eq!(collapse_whitespace("  a \n b\tc "), "a b c");
    }
}
