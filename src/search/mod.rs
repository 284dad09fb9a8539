//! Retrieval: a Tantivy index over the corpus's passages, built atomically and checked against the
//! corpus fingerprint, plus forgiving search with a calibrated "is anything relevant?" signal.
//!
//! Invariants: a query never panics and never errors on odd text (only an empty one is refused, with a
//! message); an index directory is either fully built or absent; the index in use always matches the
//! corpus fingerprint it was opened for.

mod analysis;
pub use analysis::asks_about_questions;
pub mod clusters;
mod concepts;
pub mod follow_up;
mod highlight;
mod query;
mod relevance;
mod storage;

pub use analysis::english_analyzer;
pub use query::{Coverage, QueryPlan};
pub use relevance::RelevanceModel;
pub use storage::{IndexLocation, OpenOutcome};

use crate::corpus::{Corpus, CorpusError, PassageKind};
use serde::Serialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use tantivy::collector::TopDocs;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::{doc, DocAddress, Index, IndexReader, ReloadPolicy, TantivyDocument};

/// Bumped whenever the schema or the analysis changes, so old indexes are rebuilt, not misread.
pub const SCHEMA_VERSION: u32 = 8;
/// Name under which the English analyzer is registered (tokenizers are not persisted by Tantivy).
const ANALYZER_NAME: &str = "guidebot_english";
/// Most hits a caller can ask for.
pub const MAX_HITS: usize = 25;
/// Queries are cut to this many characters: a Discord message is at most 6000 and nothing useful
/// lies past this point, while the cost of a query grows with its length.
pub const MAX_QUERY_CHARS: usize = 2000;

/// Why a search or an index operation failed. `EmptyQuery` is the only error a user can cause.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the question is empty: type a few words, e.g. \"what is the total comp for a Google L4 MLE?\"")]
    EmptyQuery,
    /// An error of the index library. Its message is in the text and it is not also the
    /// error's source: printed with its chain (`{:#}`), the cause would show twice.
    #[error("index error: {0}")]
    Index(tantivy::TantivyError),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error("index metadata in {path} is unreadable: {message}")]
    Metadata { path: PathBuf, message: String },
    #[error("the index found nothing for its own probe question: it is damaged")]
    Probe,
    #[error("the search index failed on this question (an internal error, logged)")]
    Panicked,
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(error: tantivy::TantivyError) -> Self {
        SearchError::Index(error)
    }
}

impl SearchError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SearchError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The fields of the index. Heading and guide title are searched with a boost over the body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub passage_id: Field,
    pub guide_slug: Field,
    pub guide_title: Field,
    pub section_id: Field,
    pub heading: Field,
    /// The bold question a passage answers (see `Passage::subheading`), searched like a heading.
    pub subheading: Field,
    pub heading_path: Field,
    pub body: Field,
    /// A list item's lead-in, stored for citing. Not searched: its words count toward coverage
    /// (through `tokens`), but as a search field it cost half of the query time on the synthetic
    /// corpus for no gain on the eval set.
    pub context: Field,
    pub kind: Field,
    pub line: Field,
    /// The passage's analyzed tokens (heading, body, context), stored for coverage without re-stemming.
    pub tokens: Field,
    /// Vocabulary concept tokens (`g<N>`, see `concepts.rs`) of the heading and the body.
    pub heading_concepts: Field,
    pub body_concepts: Field,
    /// Exclusion tokens (`g<N>x<M>`, see `concepts.rs`) of the heading and the body.
    pub heading_exclusions: Field,
    pub body_exclusions: Field,
}

pub(crate) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Positions are not indexed: every query is a union of single terms (vocabulary phrases are
    // indexed as concept tokens), and snippets re-tokenize the stored text.
    let english = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER_NAME)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
        .set_stored();
    // Concept tokens need frequencies (BM25 and block-WAND read them) but no positions: a concept
    // query is a single term. Each concept field is padded to its text's length (see
    // `concepts::concept_field_text`), so its field norm weighs a mention in a long passage as
    // BM25 weighs a word of that passage.
    let concepts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("whitespace")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    // Exclusion fields keep their own field norms (a mention names every other term of its group,
    // so they are not padded): measured on the eval set, constant norms ranked worse.
    let exclusions = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("whitespace")
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        passage_id: builder.add_text_field("passage_id", STRING | STORED),
        guide_slug: builder.add_text_field("guide_slug", STRING | STORED),
        guide_title: builder.add_text_field("guide_title", english.clone()),
        section_id: builder.add_text_field("section_id", STRING | STORED),
        heading: builder.add_text_field("heading", english.clone()),
        subheading: builder.add_text_field("subheading", english.clone()),
        heading_path: builder.add_text_field("heading_path", STORED),
        body: builder.add_text_field("body", english.clone()),
        context: builder.add_text_field("context", STORED),
        kind: builder.add_text_field("kind", STRING | STORED),
        line: builder.add_u64_field("line", STORED),
        tokens: builder.add_text_field("tokens", STORED),
        heading_concepts: builder.add_text_field("heading_concepts", concepts.clone()),
        body_concepts: builder.add_text_field("body_concepts", concepts),
        heading_exclusions: builder.add_text_field("heading_exclusions", exclusions.clone()),
        body_exclusions: builder.add_text_field("body_exclusions", exclusions),
    };
    (builder.build(), fields)
}

/// One passage found for a query, with what a citation needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub rank: usize,
    pub score: f32,
    pub passage_id: String,
    pub guide: String,
    pub guide_title: String,
    pub section_id: String,
    pub heading: String,
    /// The bold question the passage answers, when the guide asks one under the heading.
    pub subheading: Option<String>,
    pub heading_path: Vec<String>,
    pub kind: PassageKind,
    pub text: String,
    pub context: Option<String>,
    /// The passage's most relevant fragment with the matched words in **bold** (Discord Markdown).
    pub snippet: String,
    pub line: u64,
}

/// What the relevance judgement read, each in a scale that does not depend on the corpus's size:
/// shares of the question's own weight, and matched rarity relative to the rarest possible word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RelevanceFeatures {
    /// Best share of the question's weighted ideas that one of the first passages covers.
    pub coverage: f32,
    /// That passage matches the question's weightiest idea.
    pub top_matched: bool,
    /// Share of the question's weight in words no guide uses.
    pub unknown_share: f32,
    /// Matched weight over the weight of a word found in one passage only.
    pub matched_rarity: f32,
    /// Ideas in the question.
    pub concepts: usize,
    /// The weightiest known idea the best passage misses, over the rarest word's weight.
    pub unmatched_known: f32,
    /// Coverage of the first passage alone.
    pub first_coverage: f32,
}

/// What a search returns: the hits and whether any of them is actually about the question.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    pub query: String,
    pub relevant: bool,
    /// Share of the question's content (weighted by rarity) that the best passage covers, 0..=1.
    pub coverage: f32,
    /// Summed rarity of the question's ideas that the best passage matches.
    pub matched_weight: f32,
    /// What the relevance judgement read.
    pub features: RelevanceFeatures,
    pub hits: Vec<Hit>,
    /// The question's ideas as indexed tokens (stemmed, synonyms included), so answers can pick
    /// the sentences that carry them without parsing the question again.
    #[serde(skip)]
    pub query_terms: Vec<String>,
    /// The same tokens with the weight (rarity) of the idea each stands for.
    #[serde(skip)]
    pub term_weights: Vec<(String, f32)>,
    /// Words the search read differently ("compensaton" → "compensation").
    pub corrections: Vec<(String, String)>,
    /// Set when the query was cut or had no searchable words.
    pub notice: Option<String>,
    /// Why a question that matched passages is still not answered (a pay question for a level
    /// the tables do not list), for the refusal to say.
    #[serde(skip)]
    pub refusal_reason: Option<String>,
}

/// How many hits to return; a plain struct so new knobs do not become boolean flags.
#[derive(Debug, Clone, Copy)]
pub struct SearchOptions {
    pub limit: usize,
}

/// An earlier question of a conversation whose ideas a follow-up borrows ("and at Meta?" after a
/// Google L4 pay question): searched with the follow-up, each idea the follow-up does not name
/// itself at `weight` times its usual weight.
#[derive(Debug, Clone, PartialEq)]
pub struct BorrowedTerms {
    /// The earlier question (or the words of it that still apply).
    pub text: String,
    /// 0..=1; how much a borrowed idea counts next to the follow-up's own.
    pub weight: f32,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { limit: 5 }
    }
}

/// Each stored document's tokens as sorted ids, `[segment][doc]`.
type DocumentTokenIds = Vec<Vec<query::PassageIds>>;
/// Each stored document's shown text with numbered stems, `[segment][doc]`.
type DocumentStemmedTexts = Vec<Vec<Option<highlight::StemmedText>>>;

/// A built index, open for searching: one reader for the life of the process, a searcher per query.
pub struct SearchIndex {
    reader: IndexReader,
    fields: Fields,
    fingerprint: String,
    planner: query::QueryPlanner,
    relevance: RelevanceModel,
    location: Option<IndexLocation>,
    /// A small index's stored documents, read once when it opens (`[segment][doc]`): a query then
    /// reads no document store. `None` for an index over [`MEMORY_DOCUMENTS_MAX`] passages.
    documents: Option<Vec<Vec<TantivyDocument>>>,
    /// For a small index, each document's stored tokens as sorted ids (`[segment][doc]`) and the
    /// table that numbers them: coverage then compares numbers.
    token_ids: Option<(query::TokenIds, DocumentTokenIds)>,
    /// For a small index, each document's shown text with its words' stems numbered
    /// (`[segment][doc]`) and the table that numbers them: `/search` snippets then look up no
    /// word's stem.
    stemmed_texts: Option<(highlight::StemNumbers, DocumentStemmedTexts)>,
    /// A question the index must answer (a passage's heading and first words), run when an index
    /// on disk is opened to catch corruption that checksums miss.
    probe_question: String,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SearchIndex")
            .field("fingerprint", &self.fingerprint)
            .field("location", &self.location)
            .finish()
    }
}

impl SearchIndex {
    /// Opens the index in `index_dir` if it was built from exactly this corpus; otherwise (missing,
    /// stale, unreadable) rebuilds it atomically. Returns what happened so the CLI can say so.
    pub fn open_or_build(
        corpus: &Corpus,
        index_dir: &Path,
    ) -> Result<(SearchIndex, OpenOutcome), SearchError> {
        storage::open_or_build(corpus, index_dir)
    }

    /// Builds a fresh index for `corpus` into `index_dir` (atomically) and opens it.
    pub fn build(corpus: &Corpus, index_dir: &Path) -> Result<SearchIndex, SearchError> {
        storage::build(corpus, index_dir)
    }

    /// An index in memory, for tests and benchmarks.
    pub fn build_in_ram(corpus: &Corpus) -> Result<SearchIndex, SearchError> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        write_documents(&index, fields, corpus)?;
        SearchIndex::from_index(index, fields, corpus.fingerprint.clone(), corpus, None)
    }

    pub(crate) fn from_index(
        mut index: Index,
        fields: Fields,
        fingerprint: String,
        corpus: &Corpus,
        location: Option<IndexLocation>,
    ) -> Result<SearchIndex, SearchError> {
        index
            .tokenizers()
            .register(ANALYZER_NAME, english_analyzer());
        // A large index is written as several segments; searching them on parallel threads cuts a
        // query's latency on a big corpus. A small one (the bundled guide) is searched on the
        // caller's thread: handing a 0.3 ms query to a pool costs more than it saves.
        let segments = index.searchable_segment_metas()?;
        let documents: u64 = segments.iter().map(|meta| u64::from(meta.num_docs())).sum();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if segments.len() > 1 && cores > 1 && documents >= PARALLEL_MIN_PASSAGES {
            index.set_multithread_executor(segments.len().min(cores))?;
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let planner = query::QueryPlanner::new(fields, corpus);
        let documents = if documents <= MEMORY_DOCUMENTS_MAX {
            let searcher = reader.searcher();
            let mut by_segment = Vec::with_capacity(searcher.segment_readers().len());
            for (segment_ord, segment) in searcher.segment_readers().iter().enumerate() {
                let mut segment_documents = Vec::with_capacity(segment.max_doc() as usize);
                for doc_id in 0..segment.max_doc() {
                    segment_documents
                        .push(searcher.doc(DocAddress::new(segment_ord as u32, doc_id))?);
                }
                by_segment.push(segment_documents);
            }
            Some(by_segment)
        } else {
            None
        };
        let token_ids = documents.as_ref().map(|segments| {
            let mut table = query::TokenIds::default();
            let ids = segments
                .iter()
                .map(|documents| {
                    documents
                        .iter()
                        .map(|document| query::PassageIds {
                            tokens: table.intern(&stored_text(document, fields.tokens)),
                            pairs: table.intern_pairs(&pair_text(document, fields)),
                        })
                        .collect()
                })
                .collect();
            (table, ids)
        });
        let stemmed_texts = documents.as_ref().map(|segments| {
            let mut numbers = highlight::StemNumbers::default();
            let texts = segments
                .iter()
                .map(|documents| {
                    documents
                        .iter()
                        .map(|document| numbers.stemmed(shown_text(document, fields)))
                        .collect()
                })
                .collect();
            (numbers, texts)
        });
        let probe_question = corpus
            .passages()
            .next()
            .map(|passage| {
                let words: Vec<&str> = passage.text.split_whitespace().take(6).collect();
                format!("{} {}", passage.heading, words.join(" "))
            })
            .unwrap_or_default();
        Ok(SearchIndex {
            token_ids,
            stemmed_texts,
            probe_question,
            reader,
            fields,
            fingerprint,
            planner,
            relevance: RelevanceModel::default(),
            location,
            documents,
        })
    }

    /// The stored document at `address`: from memory for a small index, else from the store.
    fn document(
        &self,
        searcher: &tantivy::Searcher,
        address: DocAddress,
    ) -> Result<Cow<'_, TantivyDocument>, SearchError> {
        let cached = self.documents.as_ref().and_then(|segments| {
            segments
                .get(address.segment_ord as usize)?
                .get(address.doc_id as usize)
        });
        Ok(match cached {
            Some(document) => Cow::Borrowed(document),
            None => Cow::Owned(searcher.doc(address)?),
        })
    }

    /// A small index's document at `address` as its snippets are cut from, with its numbered
    /// stems; `None` for a large index.
    fn stemmed_text(
        &self,
        address: DocAddress,
    ) -> Option<(&highlight::StemNumbers, &highlight::StemmedText)> {
        let (numbers, texts) = self.stemmed_texts.as_ref()?;
        let text = texts
            .get(address.segment_ord as usize)?
            .get(address.doc_id as usize)?
            .as_ref()?;
        Some((numbers, text))
    }

    /// Fingerprint of the corpus this index was built from (plus the schema version).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Where the index lives on disk, if it is not in memory.
    pub fn location(&self) -> Option<&IndexLocation> {
        self.location.as_ref()
    }

    /// Number of passages indexed.
    pub fn passage_count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Number of index segments: a small corpus must stay in one (searched without handing the
    /// query to a thread pool); benchmarks and tests check it.
    pub fn segment_count(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Finds the passages that answer `text`. Any text is accepted; an empty one is `EmptyQuery`.
    pub fn search(
        &self,
        text: &str,
        options: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        self.search_contained(text, None, options, true)
    }

    /// Runs the probe question: the index must find something for a question made of its own
    /// first passage's words.
    pub(crate) fn probe(&self) -> Result<(), SearchError> {
        if self.probe_question.trim().is_empty() {
            return Ok(());
        }
        let results = self.search_contained(
            &self.probe_question,
            None,
            &SearchOptions { limit: 1 },
            false,
        )?;
        if results.hits.is_empty() {
            return Err(SearchError::Probe);
        }
        Ok(())
    }

    /// A search with any panic inside the index library caught and turned into an error, so one
    /// damaged index or odd question never takes a request's thread down.
    fn search_contained(
        &self,
        text: &str,
        borrowed: Option<&BorrowedTerms>,
        options: &SearchOptions,
        with_snippets: bool,
    ) -> Result<SearchResults, SearchError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.search_inner(text, borrowed, options, with_snippets)
        }))
        .unwrap_or(Err(SearchError::Panicked))
    }

    /// Like [`SearchIndex::search`] without highlighted snippets (each hit's `snippet` is the start
    /// of its text): answers quote whole sentences, so they skip the snippet generator's cost.
    pub fn search_passages(
        &self,
        text: &str,
        options: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        self.search_contained(text, None, options, false)
    }

    /// Like [`SearchIndex::search_passages`] for a follow-up that borrows an earlier question's
    /// ideas at a lower weight (see [`BorrowedTerms`]).
    pub fn search_follow_up(
        &self,
        text: &str,
        borrowed: &BorrowedTerms,
        options: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        self.search_contained(text, Some(borrowed), options, false)
    }

    fn search_inner(
        &self,
        text: &str,
        borrowed: Option<&BorrowedTerms>,
        options: &SearchOptions,
        with_snippets: bool,
    ) -> Result<SearchResults, SearchError> {
        if text.trim().is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        let limit = options.limit.clamp(1, MAX_HITS);
        let searcher = self.reader.searcher();
        let plan = match borrowed {
            Some(borrowed) => {
                self.planner
                    .plan_with_borrowed(text, &borrowed.text, borrowed.weight, &searcher)
            }
            None => self.planner.plan(text, &searcher),
        };
        let mut results = SearchResults {
            query: text.to_string(),
            relevant: false,
            coverage: 0.0,
            matched_weight: 0.0,
            features: RelevanceFeatures::default(),
            hits: Vec::new(),
            query_terms: plan.terms(),
            term_weights: plan.weighted_terms(),
            corrections: plan.corrections.clone(),
            notice: plan.notice.clone(),
            refusal_reason: None,
        };
        let Some(query) = plan.query.as_ref() else {
            return Ok(results);
        };
        // Fetch more than asked, then keep at most two passages per section near the top so one
        // long section (a table and its rows) cannot crowd out the others.
        let candidates = searcher.search(
            query.as_ref(),
            &TopDocs::with_limit((limit * 3).max(15)).order_by_score(),
        )?;
        // Rerank by coordination: BM25 sums matches, so a long passage matching many common words
        // can beat a short one matching the question's every idea. Scale by concept coverage.
        let mut rescored = Vec::with_capacity(candidates.len());
        // A guide's list of questions echoes the user's words but answers nothing, unless the user
        // asks which questions to expect.
        let question_lists_answer = analysis::asks_about_questions(text);
        let plan_ids = self
            .token_ids
            .as_ref()
            .map(|(table, _)| table.plan_ids(&plan));
        for (score, address) in candidates {
            let document = self.document(&searcher, address)?;
            let interned = self.token_ids.as_ref().and_then(|(_, ids)| {
                ids.get(address.segment_ord as usize)?
                    .get(address.doc_id as usize)
            });
            let coverage = match (&plan_ids, interned) {
                (Some(plan_ids), Some(passage)) => {
                    query::QueryPlanner::coverage_of_ids(&plan, plan_ids, &passage.tokens)
                }
                _ => self
                    .planner
                    .coverage_of_tokens(&plan, stored_str(&document, self.fields.tokens)),
            };
            let mut adjusted =
                score * (COORDINATION_FLOOR + (1.0 - COORDINATION_FLOOR) * coverage.share);
            // Neighbouring words of the question side by side in the passage ("system design",
            // "class imbalance") say more than the same words apart: up to twice the score when
            // every pair is there.
            let pairs = match (&plan_ids, interned) {
                (Some(plan_ids), Some(passage)) => {
                    query::QueryPlanner::pair_share_of_ids(&plan, plan_ids, &passage.pairs)
                }
                _ => query::QueryPlanner::pair_share_of_text(
                    &plan,
                    &pair_text(&document, self.fields),
                ),
            };
            adjusted *= 1.0 + WORD_PAIR_BOOST * pairs;
            if !question_lists_answer
                && analysis::mostly_questions(stored_str(&document, self.fields.body))
            {
                adjusted *= QUESTION_LIST_FACTOR;
            }
            rescored.push((adjusted, coverage, document, address));
        }
        rescored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut sections_seen: Vec<(String, usize)> = Vec::new();
        let mut chosen = Vec::with_capacity(limit);
        let mut deferred = Vec::new();
        for (score, coverage, document, address) in rescored {
            let section = stored_text(&document, self.fields.section_id);
            let count = match sections_seen.iter_mut().find(|(id, _)| *id == section) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    sections_seen.push((section, 1));
                    1
                }
            };
            if count <= PASSAGES_PER_SECTION {
                chosen.push((score, coverage, document, address));
            } else {
                deferred.push((score, coverage, document, address));
            }
        }
        chosen.extend(deferred);
        chosen.truncate(limit);
        let mut best_coverage = query::Coverage::default();
        let mut first_coverage = 0.0;
        for (rank, (score, coverage, document, address)) in chosen.into_iter().enumerate() {
            if rank == 0 {
                first_coverage = coverage.share;
            }
            if rank < COVERAGE_HITS && coverage.share > best_coverage.share {
                best_coverage = coverage;
            }
            let text = stored_text(&document, self.fields.body);
            let context =
                Some(stored_text(&document, self.fields.context)).filter(|c| !c.is_empty());
            let kind = parse_kind(&stored_text(&document, self.fields.kind));
            let snippet = if with_snippets {
                match self.stemmed_text(address) {
                    Some((numbers, stemmed)) => highlight::highlighted_stemmed(
                        stemmed,
                        numbers,
                        &plan.snippet_stems,
                        SNIPPET_CHARS,
                    ),
                    None => highlight::highlighted_snippet(
                        &shown_text(&document, self.fields),
                        &plan.snippet_stems,
                        SNIPPET_CHARS,
                    ),
                }
            } else {
                first_chars(&text, SNIPPET_CHARS)
            };
            results.hits.push(Hit {
                rank: rank + 1,
                score,
                passage_id: stored_text(&document, self.fields.passage_id),
                guide: stored_text(&document, self.fields.guide_slug),
                guide_title: stored_text(&document, self.fields.guide_title),
                section_id: stored_text(&document, self.fields.section_id),
                heading: stored_text(&document, self.fields.heading),
                subheading: Some(stored_text(&document, self.fields.subheading))
                    .filter(|subheading| !subheading.is_empty()),
                heading_path: stored_text(&document, self.fields.heading_path)
                    .split(HEADING_PATH_SEPARATOR)
                    .map(str::to_string)
                    .collect(),
                kind,
                text,
                context,
                snippet,
                line: document
                    .get_first(self.fields.line)
                    .and_then(|value| value.as_u64())
                    .unwrap_or(0),
            });
        }
        // Relevance: the best coverage among the first hits, with the top score as a floor.
        if !results.hits.is_empty() {
            results.coverage = best_coverage.share;
            results.matched_weight = best_coverage.matched_weight;
            let documents = searcher.num_docs().max(1) as f32;
            let rarest = (1.0 + (documents - 1.0 + 0.5) / 1.5).ln();
            results.features = RelevanceFeatures {
                coverage: best_coverage.share,
                top_matched: best_coverage.top_matched,
                unknown_share: plan.unknown_share(),
                matched_rarity: best_coverage.matched_weight / rarest.max(f32::EPSILON),
                concepts: plan.concept_count(),
                unmatched_known: best_coverage.unmatched_known / rarest.max(f32::EPSILON),
                first_coverage,
            };
            results.relevant = self.relevance.is_relevant(&results.features);
        }
        Ok(results)
    }
}

const HEADING_PATH_SEPARATOR: &str = " › ";
/// Longest snippet, in characters (Discord shows about this much of a field comfortably).
const SNIPPET_CHARS: usize = 220;
/// Passages from which an index is written and searched on several threads.
const PARALLEL_MIN_PASSAGES: u64 = 20_000;
/// Passages up to which an index keeps its stored documents in memory (about 1 KB each).
const MEMORY_DOCUMENTS_MAX: u64 = 20_000;
/// Passages of one section allowed before others get a turn in the ranking.
const PASSAGES_PER_SECTION: usize = 3;
/// How many of the first hits may carry the relevance judgement.
const COVERAGE_HITS: usize = 3;
/// Share of the BM25 score a passage keeps when it covers none of the question's concepts.
const COORDINATION_FLOOR: f32 = 0.3;
/// Share of its score a passage made mostly of questions keeps (see [`analysis::mostly_questions`]).
const QUESTION_LIST_FACTOR: f32 = 0.6;

/// How much a passage holding every neighbouring pair of the question's words side by side gains
/// (× 1 + this; fitted on the dev sets: 0.5 and 1.5 did less, BENCHMARKS.md).
const WORD_PAIR_BOOST: f32 = 1.0;

/// What a passage's word pairs are read from: the heading path, the bold question line the
/// passage answers (if any), then the passage's text; a table row's cells, with their column
/// names, count as all side by side.
fn pair_text(document: &TantivyDocument, fields: Fields) -> query::PairText {
    query::PairText {
        text: format!(
            "{} | {} | {}",
            stored_str(document, fields.heading_path),
            stored_str(document, fields.subheading),
            stored_str(document, fields.body)
        ),
        row: (parse_kind(stored_str(document, fields.kind)) == PassageKind::TableRow)
            .then(|| shown_text(document, fields)),
    }
}

pub(crate) fn write_documents(
    index: &Index,
    fields: Fields,
    corpus: &Corpus,
) -> Result<(), SearchError> {
    index
        .tokenizers()
        .register(ANALYZER_NAME, english_analyzer());
    // One indexing thread writes one segment: a small corpus stays in one (searched without
    // hand-offs); a large one is written on every core, in as many segments, searched in parallel.
    let threads = if corpus.passages().count() < PARALLEL_MIN_PASSAGES as usize {
        1
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
    };
    let mut writer =
        index.writer_with_num_threads::<TantivyDocument>(threads, threads * 40_000_000)?;
    let concepts = concepts::ConceptMatcher::new(&corpus.vocabulary);
    for passage in corpus.passages() {
        let context = passage.context.clone().unwrap_or_default();
        let heading_text = match &passage.subheading {
            Some(subheading) => format!("{} {subheading}", passage.heading),
            None => passage.heading.clone(),
        };
        // A table row is read with its header ("Company | Level | Base | Total comp"): the header
        // is searched with the row, as a second value of the body (the first is what is shown).
        let searched_context = match (&passage.kind, &passage.context) {
            (PassageKind::TableRow, Some(context)) => Some(context.as_str()),
            _ => None,
        };
        let heading_concepts = concepts.index_texts(&heading_text);
        let body_concepts = match searched_context {
            Some(context) => concepts.index_texts(&format!("{} {context}", passage.text)),
            None => concepts.index_texts(&passage.text),
        };
        let mut document = doc!(
            fields.passage_id => passage.id.as_str(),
            fields.guide_slug => passage.guide_slug.as_str(),
            fields.guide_title => passage.guide_title.as_str(),
            fields.section_id => passage.section_id.as_str(),
            fields.heading => passage.heading.as_str(),
            fields.heading_path => passage.heading_path.join(HEADING_PATH_SEPARATOR),
            fields.body => passage.text.as_str(),
            fields.context => context.as_str(),
            fields.kind => passage.kind.as_str(),
            fields.line => passage.line as u64,
            fields.tokens => passage_tokens(passage),
            fields.heading_concepts => heading_concepts.concepts,
            fields.body_concepts => body_concepts.concepts,
            fields.heading_exclusions => heading_concepts.exclusions,
            fields.body_exclusions => body_concepts.exclusions,
        );
        if let Some(subheading) = &passage.subheading {
            document.add_text(fields.subheading, subheading);
        }
        if let Some(context) = searched_context {
            document.add_text(fields.body, context);
        }
        writer.add_document(document)?;
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(())
}

/// The distinct analyzed tokens of a passage's heading, text and context, space-separated.
fn passage_tokens(passage: &crate::corpus::Passage) -> String {
    let text = format!(
        "{} {} {} {}",
        passage.heading,
        passage.subheading.as_deref().unwrap_or(""),
        passage.text,
        passage.context.as_deref().unwrap_or("")
    );
    let mut tokens = analysis::analyzed_tokens(&text);
    tokens.sort();
    tokens.dedup();
    tokens.join(" ")
}

/// The text a `/search` snippet is cut from: the passage's text, a table row with its column
/// names ("Company: Google MLE; Level: L4"), which reads better.
fn shown_text(document: &TantivyDocument, fields: Fields) -> String {
    let text = stored_str(document, fields.body);
    let context = stored_str(document, fields.context);
    match parse_kind(stored_str(document, fields.kind)) {
        PassageKind::TableRow if !context.is_empty() => labelled_row(context, text),
        _ => text.to_string(),
    }
}

fn stored_text(document: &TantivyDocument, field: Field) -> String {
    stored_str(document, field).to_string()
}

/// A stored text field, borrowed (no copy on the ranking path).
fn stored_str(document: &TantivyDocument, field: Field) -> &str {
    document
        .get_first(field)
        .and_then(|value| value.as_str())
        .unwrap_or_default()
}

fn parse_kind(text: &str) -> PassageKind {
    match text {
        "list_item" => PassageKind::ListItem,
        "table" => PassageKind::Table,
        "table_row" => PassageKind::TableRow,
        "code" => PassageKind::Code,
        _ => PassageKind::Paragraph,
    }
}

/// A table row with the names of its columns (the last line of its context is the header), for
/// display: "Company: Google MLE; Level: L4; Base: $170k–$220k; Total comp: $300k–$430k".
fn labelled_row(context: &str, row: &str) -> String {
    let header: Vec<&str> = context
        .lines()
        .last()
        .unwrap_or_default()
        .split(" | ")
        .collect();
    let cells: Vec<&str> = row.split(" | ").collect();
    if header.len() != cells.len() || header.iter().all(|name| name.is_empty()) {
        return row.to_string();
    }
    header
        .iter()
        .zip(&cells)
        .map(|(name, cell)| {
            if name.is_empty() {
                cell.to_string()
            } else {
                format!("{name}: {cell}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The analyzer's tokens of `text` (lowercased, stop words removed, stemmed), as the index has them.
pub fn analyze(text: &str) -> Vec<String> {
    analysis::analyzed_tokens(text)
}

/// Calls `visit` with each analyzed token of `text`, without collecting them.
pub fn for_each_token(text: &str, visit: impl FnMut(&str)) {
    analysis::for_each_analyzed_token(text, visit)
}

/// Like [`for_each_token`], for the guides' own text, which is read request after request: each
/// word's stem is remembered by the thread instead of being worked out again. Not for user text.
pub fn for_each_guide_token(text: &str, visit: impl FnMut(&str)) {
    analysis::for_each_remembered_token(text, visit)
}

/// The first `limit` characters of `text`, cut at a word boundary, with an ellipsis when cut.
pub fn first_chars(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let cut: String = text.chars().take(limit).collect();
    let cut = match cut.rfind(' ') {
        Some(space) if space > limit / 2 => cut[..space].to_string(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn guide_index() -> SearchIndex {
        let corpus = Corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"))
            .expect("bundled corpus loads");
        SearchIndex::build_in_ram(&corpus).expect("index builds")
    }

    #[test]
    fn word_pairs_from_ids_and_from_text_agree() {
        // A large index reads pairs from the passage's text; a small one from ids built at open:
        // both must rank the same.
        let index = guide_index();
        let searcher = index.reader.searcher();
        let Some((table, ids)) = index.token_ids.as_ref() else {
            panic!("the bundled guide keeps its ids");
        };
        let mut compared = 0;
        for question in [
            "ml system design round",
            "total comp at google for an L4 MLE",
            "how do mid level data scientists work with PMs",
        ] {
            let plan = index.planner.plan(question, &searcher);
            let plan_ids = table.plan_ids(&plan);
            for (segment_ord, segment) in ids.iter().enumerate() {
                for (doc_id, passage) in segment.iter().enumerate() {
                    let document = index
                        .document(
                            &searcher,
                            DocAddress::new(segment_ord as u32, doc_id as u32),
                        )
                        .expect("document");
                    let from_ids =
                        query::QueryPlanner::pair_share_of_ids(&plan, &plan_ids, &passage.pairs);
                    let from_text = query::QueryPlanner::pair_share_of_text(
                        &plan,
                        &pair_text(&document, index.fields),
                    );
                    assert_eq!(from_ids, from_text, "{question}");
                    compared += usize::from(from_ids > 0.0);
                }
            }
        }
        assert!(compared > 3, "some passages hold a pair: {compared}");
    }

    #[test]
    fn a_small_index_keeps_its_documents_in_memory() {
        let index = guide_index();
        let documents = index.documents.as_ref().expect("documents kept");
        let kept: usize = documents.iter().map(Vec::len).sum();
        assert_eq!(kept as u64, index.passage_count());
    }

    #[test]
    fn an_index_without_documents_in_memory_reads_the_store_and_finds_the_same() {
        let mut index = guide_index();
        let options = SearchOptions::default();
        let question = "what's the TC for a google L4 MLE";
        let from_memory = index.search(question, &options).expect("search");
        index.documents = None;
        let from_store = index.search(question, &options).expect("search");
        assert_eq!(from_memory.hits, from_store.hits);
        assert!(!from_store.hits.is_empty());
    }
}
