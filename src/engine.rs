//! The API of the core: one loaded corpus, its index, its comp records and the answer settings, and
//! the operations every front end calls.
//!
//! The CLI, the Discord gateway and the HTTP endpoint all go through [`Engine`]; none of them touch
//! Tantivy, the Markdown or the LLM wire formats directly. The engine is `Send + Sync`; share it as
//! `Arc<Engine>`.

use crate::answer::{
    estimated_tokens, extractive_answer, ground_completion, sent_passages, system_prompt,
    whole_corpus_passages, Answer, AnswerMode, FallbackReason, SentPassage, ANSWER_PASSAGES,
};
use crate::comp::{CompChoice, CompData, CompLookup, CompQuery};
use crate::corpus::{Corpus, Passage};
use crate::llm::{
    HistoryTurn, LlmClient, LlmCompletion, LlmError, LlmEvent, LlmRequest, LlmSettings,
    ProviderKind,
};
use crate::search::follow_up::{self, FollowUpKind};
use crate::search::{
    BorrowedTerms, OpenOutcome, SearchError, SearchIndex, SearchOptions, SearchResults,
};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Where the engine finds its data and how it answers. A struct so new settings stay named.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub corpus_dir: PathBuf,
    /// More folders of guides indexed with `corpus_dir`'s (vocabulary and aliases come from it).
    pub extra_corpus_dirs: Vec<PathBuf>,
    pub index_dir: PathBuf,
    /// `None`: extractive answers only.
    pub llm: Option<LlmSettings>,
    /// What the corpus load may read (largest guide file).
    pub limits: crate::corpus::LoadLimits,
}

impl EngineConfig {
    pub fn new(corpus_dir: &Path, index_dir: &Path) -> Self {
        EngineConfig {
            corpus_dir: corpus_dir.to_path_buf(),
            extra_corpus_dirs: Vec::new(),
            index_dir: index_dir.to_path_buf(),
            llm: None,
            limits: crate::corpus::LoadLimits::default(),
        }
    }
}

/// Loading the engine failed: the corpus or its comp tables are broken, or the index cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Corpus(#[from] crate::corpus::CorpusError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("cannot create the HTTP client for the LLM: {0}")]
    HttpClient(String),
}

/// Whether this answer may use the LLM; a denial carries the reason the reader is told.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LlmPermission {
    #[default]
    Allowed,
    Denied(FallbackReason),
}

/// Per-answer options.
#[derive(Debug, Clone, Default)]
pub struct AnswerOptions {
    pub llm: LlmPermission,
    /// The conversation so far, oldest first (empty for a first question): a follow-up borrows
    /// the last turn's ideas for retrieval, and the LLM reads the turns.
    pub history: Vec<PriorTurn>,
}

/// One earlier exchange of a conversation, as the engine needs it to read a follow-up. Plain
/// data: whoever keeps conversations (the bot's history, a store) hands it back in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PriorTurn {
    /// What the user asked.
    pub question: String,
    /// What retrieval searched for it (the question and what it borrowed), so a chain of
    /// follow-ups keeps its topic: see [`Engine::standalone_query`].
    pub standalone: String,
    /// The answer as shown (sent to the LLM as the assistant's turn; never cited).
    pub answer: String,
}

/// What an answer stream yields: the text so far while an LLM writes, then the checked answer.
#[derive(Debug, Clone)]
pub enum AnswerEvent {
    /// The whole text written so far (not yet checked; markers as the model wrote them).
    Partial(String),
    /// The final answer: only the sentences the checks kept (the note says when some were
    /// removed), or the extractive one.
    Final(Answer),
}

/// One section in full, for `/source`.
#[derive(Debug, Clone, Serialize)]
pub struct SectionView {
    pub guide: String,
    pub guide_title: String,
    pub as_of: String,
    pub section_id: String,
    pub heading: String,
    pub heading_path: Vec<String>,
    pub passages: Vec<Passage>,
    /// The sections right under this one ("Frequently asked questions" → each question), so a
    /// heading with no text of its own can offer them instead.
    pub subsections: Vec<crate::answer::SectionRef>,
}

/// A choice offered by autocomplete: what the user sees and the value sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub name: String,
    pub value: String,
}

/// What `/about` shows: the guides and their freshness, the answer mode, the index fingerprint.
#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub guides: Vec<GuideSummary>,
    pub answer_mode: String,
    pub model: Option<String>,
    pub fingerprint: String,
    pub passages: u64,
    pub comp_records: usize,
    pub version: String,
}

/// One guide as listed by `/about`.
#[derive(Debug, Clone, Serialize)]
pub struct GuideSummary {
    pub title: String,
    pub slug: String,
    /// Empty when the guide does not name its author.
    pub author: String,
    pub year: Option<u16>,
    pub as_of: String,
    pub sources: Vec<String>,
    pub sections: usize,
}

/// A corpus, its search index, its comp records and (optionally) an LLM client, ready to serve.
#[derive(Debug)]
pub struct Engine {
    corpus: Arc<Corpus>,
    index: SearchIndex,
    comp: CompData,
    llm: Option<LlmClient>,
    open_outcome: OpenOutcome,
    /// Every passage in document order, when an LLM is configured with a whole-guide budget the
    /// corpus fits: sent instead of the top hits (retrieval still decides whether to answer).
    whole_guide: Option<Arc<Vec<SentPassage>>>,
}

impl Engine {
    /// Loads the corpus, opens its index (rebuilding it when missing or stale), reads the comp tables
    /// and prepares the LLM client when configured.
    pub fn open(config: &EngineConfig) -> Result<Engine, EngineError> {
        let corpus = Corpus::load_with(
            &config.corpus_dir,
            &config.extra_corpus_dirs,
            &config.limits,
        )?;
        for warning in &corpus.warnings {
            tracing::warn!("{warning}");
        }
        let (index, open_outcome) = SearchIndex::open_or_build(&corpus, &config.index_dir)?;
        Engine::assemble(corpus, index, open_outcome, config.llm.clone())
    }

    /// An engine over an in-memory index, for tests and benchmarks.
    pub fn in_memory(corpus: Corpus, llm: Option<LlmSettings>) -> Result<Engine, EngineError> {
        let index = SearchIndex::build_in_ram(&corpus)?;
        let outcome = OpenOutcome::Built {
            reason: "in memory".to_string(),
        };
        Engine::assemble(corpus, index, outcome, llm)
    }

    fn assemble(
        corpus: Corpus,
        index: SearchIndex,
        open_outcome: OpenOutcome,
        llm: Option<LlmSettings>,
    ) -> Result<Engine, EngineError> {
        let comp = CompData::from_corpus(&corpus)?;
        for warning in comp.warnings() {
            tracing::warn!("{warning}; the row is left out of /comp");
        }
        let whole_guide = llm
            .as_ref()
            .filter(|settings| settings.whole_guide_tokens > 0)
            .and_then(|settings| {
                let passages = whole_corpus_passages(&corpus);
                let tokens = estimated_tokens(&passages);
                if tokens <= settings.whole_guide_tokens {
                    tracing::info!(
                        tokens,
                        passages = passages.len(),
                        "the whole corpus fits the LLM budget: every passage is sent, cached"
                    );
                    Some(Arc::new(passages))
                } else {
                    tracing::info!(
                        tokens,
                        budget = settings.whole_guide_tokens,
                        "the corpus is over the whole-guide budget: the top passages are sent"
                    );
                    None
                }
            });
        let llm = match llm {
            Some(settings) => {
                let http = reqwest::Client::builder()
                    .user_agent(concat!("guidebot/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|error| EngineError::HttpClient(error.to_string()))?;
                Some(LlmClient::new(settings, http))
            }
            None => None,
        };
        Ok(Engine {
            corpus: Arc::new(corpus),
            index,
            comp,
            llm,
            open_outcome,
            whole_guide,
        })
    }

    /// Whether LLM answers get the whole corpus (it fits `llm.whole_guide_tokens`).
    pub fn sends_whole_guide(&self) -> bool {
        self.whole_guide.is_some()
    }

    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    pub fn comp_data(&self) -> &CompData {
        &self.comp
    }

    /// Whether opening reused the index on disk or built it.
    pub fn open_outcome(&self) -> &OpenOutcome {
        &self.open_outcome
    }

    /// The fingerprint of the corpus (and index) being served.
    pub fn fingerprint(&self) -> &str {
        self.index.fingerprint()
    }

    /// The mode answers are written in when the LLM is allowed.
    pub fn answer_mode(&self) -> AnswerMode {
        match self.llm.as_ref().map(LlmClient::kind) {
            Some(ProviderKind::Anthropic) => AnswerMode::Anthropic,
            Some(ProviderKind::OpenAi) => AnswerMode::OpenAi,
            None => AnswerMode::Extractive,
        }
    }

    /// Whether an LLM is configured (its answers are slow: callers defer and stream them).
    pub fn has_llm(&self) -> bool {
        self.llm.is_some()
    }

    /// Searches the guides. See [`SearchIndex::search`].
    pub fn search(
        &self,
        query: &str,
        options: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        let mut results = self.index.search(query, options)?;
        self.refuse_pay_outside_the_tables(query, &mut results);
        Ok(results)
    }

    /// The extractive answer: fast, no network. An empty question is the only error.
    pub fn answer_extractive(&self, question: &str) -> Result<Answer, SearchError> {
        let started = Instant::now();
        let results = self.search_for_answer(question, &[])?;
        let mut answer = extractive_answer(question, &results, &self.corpus);
        answer.latency_ms = elapsed_ms(started);
        Ok(answer)
    }

    /// The best answer available: the LLM's when configured, allowed and grounded, otherwise the
    /// extractive one with a note saying why. Never fails except on an empty question. The LLM
    /// is asked for the whole answer in one response (nothing is shown before it is checked);
    /// [`Engine::answer_events`] streams it instead.
    pub async fn answer(
        &self,
        question: &str,
        options: &AnswerOptions,
    ) -> Result<Answer, SearchError> {
        Ok(match self.plan(question, options)? {
            Plan::Ready(answer) => answer,
            Plan::Llm {
                client,
                request,
                context,
            } => {
                let completion = client.complete(&request).await;
                context.finish(completion)
            }
        })
    }

    /// The answer as a stream: `Partial` texts while an LLM writes (unchecked), then one `Final`
    /// holding only what the checks kept. Without an LLM (or when the question is not covered)
    /// the stream is a single `Final`.
    pub fn answer_events(
        &self,
        question: &str,
        options: &AnswerOptions,
    ) -> Result<BoxStream<'static, AnswerEvent>, SearchError> {
        let (client, request, context) = match self.plan(question, options)? {
            Plan::Ready(answer) => {
                return Ok(futures::stream::iter([AnswerEvent::Final(answer)]).boxed())
            }
            Plan::Llm {
                client,
                request,
                context,
            } => (client, request, context),
        };
        let llm_stream = client.stream(&request);
        let stream = futures::stream::unfold(
            StreamState::Running {
                llm_stream,
                text: String::new(),
                context,
            },
            next_answer_event,
        );
        Ok(stream.boxed())
    }

    /// Whether answering `question` after `history` would call the LLM: one is configured and
    /// the guides cover the question (a refusal, or a question with no passage to send, never
    /// calls it). The dispatcher asks before it charges an LLM budget or starts a cooldown, so a
    /// refusal spends neither. An empty question is an error, as for every answer.
    pub fn would_call_llm(
        &self,
        question: &str,
        history: &[PriorTurn],
    ) -> Result<bool, SearchError> {
        if self.llm.is_none() {
            return Ok(false);
        }
        let options = AnswerOptions {
            llm: LlmPermission::Allowed,
            history: history.to_vec(),
        };
        Ok(matches!(self.plan(question, &options)?, Plan::Llm { .. }))
    }

    /// The extractive answer when it is final (no LLM, not allowed, or a refusal), else the LLM
    /// request for the question: its hits merged into citable passages.
    fn plan(&self, question: &str, options: &AnswerOptions) -> Result<Plan, SearchError> {
        let started = Instant::now();
        let results = self.search_for_answer(question, &options.history)?;
        let mut extractive = extractive_answer(question, &results, &self.corpus);
        let client = match (&self.llm, &options.llm) {
            (Some(client), LlmPermission::Allowed) if !extractive.refused => client.clone(),
            (Some(_), LlmPermission::Denied(reason)) if !extractive.refused => {
                extractive.note = Some(reason.reader_note().to_string());
                extractive.fallback = Some(reason.clone());
                extractive.latency_ms = elapsed_ms(started);
                return Ok(Plan::Ready(extractive));
            }
            _ => {
                extractive.latency_ms = elapsed_ms(started);
                return Ok(Plan::Ready(extractive));
            }
        };
        let sent = match &self.whole_guide {
            Some(all) => all.as_ref().clone(),
            None => {
                let hits = &results.hits[..results.hits.len().min(ANSWER_PASSAGES)];
                sent_passages(hits, &self.corpus)
            }
        };
        if sent.is_empty() {
            extractive.latency_ms = elapsed_ms(started);
            return Ok(Plan::Ready(extractive));
        }
        let request = LlmRequest {
            system_prompt: system_prompt(client.kind()),
            question: question.to_string(),
            passages: sent.iter().map(SentPassage::prompt).collect(),
            history: options
                .history
                .iter()
                .map(|turn| HistoryTurn {
                    question: turn.question.clone(),
                    answer: turn.answer.clone(),
                })
                .collect(),
            cache_passages: self.whole_guide.is_some(),
        };
        Ok(Plan::Llm {
            client,
            request,
            context: Box::new(StreamContext {
                question: question.to_string(),
                sent,
                corpus: Arc::clone(&self.corpus),
                query_terms: results.query_terms.clone(),
                coverage: results.coverage,
                mode: self.answer_mode(),
                extractive,
                started,
            }),
        })
    }

    /// What a follow-up borrows from the conversation for retrieval, if anything: the last
    /// turn's standalone query, less the companies or levels the follow-up replaces, when the
    /// follow-up continues it ("and at Meta?") — or, for a very short one ("L5?"), when it finds
    /// nothing relevant alone. A question that stands alone borrows nothing.
    pub fn borrowed_terms(
        &self,
        question: &str,
        history: &[PriorTurn],
    ) -> Result<Option<BorrowedTerms>, SearchError> {
        let Some(last) = history.last() else {
            return Ok(None);
        };
        let borrow = match follow_up::classify(question) {
            FollowUpKind::Continues => true,
            FollowUpKind::Short => {
                question.trim().is_empty()
                    || !self
                        .index
                        .search_passages(question, &SearchOptions { limit: 3 })?
                        .relevant
            }
            FollowUpKind::StandsAlone => false,
        };
        if !borrow {
            return Ok(None);
        }
        let text = self.comp.carry_over(&last.standalone, question);
        Ok((!text.trim().is_empty()).then_some(BorrowedTerms {
            text,
            weight: follow_up::BORROWED_WEIGHT,
        }))
    }

    /// The question as retrieval read it, for the next follow-up to borrow from: the question,
    /// then the words it borrowed.
    pub fn standalone_query(&self, question: &str, history: &[PriorTurn]) -> String {
        match self.borrowed_terms(question, history) {
            Ok(Some(borrowed)) => format!("{} {}", question.trim(), borrowed.text),
            _ => question.trim().to_string(),
        }
    }

    /// Searches for a question of a conversation (see [`Engine::borrowed_terms`]); without
    /// history it is [`Engine::search`] without snippets.
    pub fn search_in_conversation(
        &self,
        question: &str,
        history: &[PriorTurn],
        options: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        match self.borrowed_terms(question, history)? {
            Some(borrowed) => self.index.search_follow_up(question, &borrowed, options),
            None => self.index.search(question, options),
        }
    }

    fn search_for_answer(
        &self,
        question: &str,
        history: &[PriorTurn],
    ) -> Result<SearchResults, SearchError> {
        if question.trim().is_empty() {
            return Err(SearchError::EmptyQuery);
        }
        let options = SearchOptions {
            limit: ANSWER_PASSAGES,
        };
        let mut results = match self.borrowed_terms(question, history)? {
            Some(borrowed) => self.index.search_follow_up(question, &borrowed, &options)?,
            None => self.index.search_passages(question, &options)?,
        };
        self.refuse_pay_outside_the_tables(question, &mut results);
        Ok(results)
    }

    /// A pay question for what the tables have no row for (a level such as "senior" or "L5 at
    /// Google", an employer such as Airbnb, a place such as London) would be answered with other
    /// rows: mark it not relevant, naming what is missing, for every command alike.
    fn refuse_pay_outside_the_tables(&self, question: &str, results: &mut SearchResults) {
        // An already refused question only gains the name of what is missing.
        if !results.relevant && results.refusal_reason.is_some() {
            return;
        }
        let pay_row_first = results.hits.first().is_some_and(|hit| {
            matches!(
                hit.kind,
                crate::corpus::PassageKind::TableRow | crate::corpus::PassageKind::Table
            ) && self
                .comp
                .records()
                .iter()
                .any(|record| record.guide == hit.guide && record.section_id == hit.section_id)
        });
        if !(pay_row_first || self.comp.asks_for_pay(question)) {
            return;
        }
        if let Some(name) = self.comp.not_in_pay_tables(question) {
            results.relevant = false;
            results.refusal_reason = Some(format!(
                "The guides' pay tables have no figures for {name}; try /comp to see what they list."
            ));
        }
    }

    /// Compensation rows for the companies asked (see `comp::CompData::lookup`).
    pub fn comp(&self, query: &CompQuery) -> CompLookup {
        self.comp.lookup(query)
    }

    /// Autocomplete for company names (at most 25 choices).
    pub fn comp_choices(&self, prefix: &str) -> Vec<CompChoice> {
        self.comp.autocomplete(prefix)
    }

    /// A section in full. Accepts "guide#section-id", a section id, or a heading (any case).
    pub fn section(&self, reference: &str) -> Option<SectionView> {
        let reference = reference.trim();
        let (guide_filter, wanted) = match reference.split_once('#') {
            Some((guide, section)) => (Some(guide), section),
            None => (None, reference),
        };
        let wanted_lower = wanted.to_lowercase();
        let wanted_slug = crate::corpus::slugify(wanted);
        for guide in &self.corpus.guides {
            if guide_filter.is_some_and(|slug| slug != guide.meta.slug) {
                continue;
            }
            let found = guide.sections.iter().find(|section| {
                section.id == wanted
                    || section.heading.to_lowercase() == wanted_lower
                    || section.id == wanted_slug
            });
            if let Some(section) = found {
                let passages: Vec<Passage> = guide
                    .passages_of(&section.id)
                    .filter(|passage| passage.kind != crate::corpus::PassageKind::TableRow)
                    .cloned()
                    .collect();
                let position = guide
                    .sections
                    .iter()
                    .position(|candidate| candidate.id == section.id)
                    .unwrap_or(0);
                let below: Vec<&crate::corpus::Section> = guide.sections[position + 1..]
                    .iter()
                    .take_while(|next| next.level > section.level)
                    .collect();
                let child_level = below.iter().map(|next| next.level).min();
                let subsections = below
                    .iter()
                    .filter(|next| Some(next.level) == child_level)
                    .map(|next| crate::answer::SectionRef {
                        guide: guide.meta.slug.clone(),
                        section_id: next.id.clone(),
                        heading: next.heading.clone(),
                    })
                    .collect();
                return Some(SectionView {
                    guide: guide.meta.slug.clone(),
                    guide_title: guide.meta.title.clone(),
                    as_of: guide.meta.as_of(),
                    section_id: section.id.clone(),
                    heading: section.heading.clone(),
                    heading_path: section.heading_path.clone(),
                    passages,
                    subsections,
                });
            }
        }
        None
    }

    /// Autocomplete for `/source`: sections whose heading or id contains the typed text, those
    /// starting with it first (the front end keeps as many as it shows).
    pub fn section_choices(&self, prefix: &str) -> Vec<Choice> {
        let needle = prefix.trim().to_lowercase();
        let mut starts = Vec::new();
        let mut contains = Vec::new();
        for guide in &self.corpus.guides {
            for section in &guide.sections {
                if guide.passages_of(&section.id).next().is_none() {
                    continue;
                }
                let heading = section.heading.to_lowercase();
                let choice = Choice {
                    name: section.heading.clone(),
                    value: format!("{}#{}", guide.meta.slug, section.id),
                };
                if needle.is_empty()
                    || heading.starts_with(&needle)
                    || section.id.starts_with(&needle)
                {
                    starts.push(choice);
                } else if heading.contains(&needle) || section.id.contains(&needle) {
                    contains.push(choice);
                }
            }
        }
        starts.extend(contains);
        starts
    }

    /// The guides, their as-of dates, the answer mode and the index fingerprint.
    pub fn about(&self) -> About {
        About {
            guides: self
                .corpus
                .guides
                .iter()
                .map(|guide| GuideSummary {
                    title: guide.meta.title.clone(),
                    slug: guide.meta.slug.clone(),
                    author: guide.meta.author.clone(),
                    year: guide.meta.year,
                    as_of: guide.meta.as_of(),
                    sources: guide.meta.sources.clone(),
                    sections: guide.sections.len(),
                })
                .collect(),
            answer_mode: self.answer_mode().as_str().to_string(),
            model: self.llm.as_ref().map(|client| client.model().to_string()),
            fingerprint: self.fingerprint().to_string(),
            passages: self.index.passage_count(),
            comp_records: self.comp.records().len(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The engine currently serving, swappable at runtime (live corpus reload). Requests take a snapshot
/// with [`EngineHandle::current`] and finish on it even if a reload swaps in a new engine meanwhile.
#[derive(Debug)]
pub struct EngineHandle {
    current: arc_swap::ArcSwap<Engine>,
}

impl EngineHandle {
    pub fn new(engine: Engine) -> Self {
        EngineHandle {
            current: arc_swap::ArcSwap::from_pointee(engine),
        }
    }

    /// The engine to use for one request.
    pub fn current(&self) -> Arc<Engine> {
        self.current.load_full()
    }

    /// Atomically replaces the engine; requests in flight keep the old one until they finish.
    pub fn replace(&self, engine: Engine) {
        self.current.store(Arc::new(engine));
    }
}

/// What answering a question takes: nothing more, or one LLM call.
enum Plan {
    Ready(Answer),
    Llm {
        client: LlmClient,
        request: LlmRequest,
        context: Box<StreamContext>,
    },
}

/// Everything the answer needs once the LLM has answered: what was sent, to check the answer
/// against, and the extractive answer to fall back on.
struct StreamContext {
    question: String,
    sent: Vec<SentPassage>,
    corpus: Arc<Corpus>,
    query_terms: Vec<String>,
    coverage: f32,
    mode: AnswerMode,
    extractive: Answer,
    started: Instant,
}

impl StreamContext {
    /// The checked LLM answer, or the extractive one with a note when the LLM failed or nothing
    /// it wrote survived the checks.
    fn finish(self, completion: Result<LlmCompletion, LlmError>) -> Answer {
        let completion = match completion {
            Ok(completion) => completion,
            Err(error) => {
                tracing::warn!(%error, "LLM failed; using the extractive answer");
                return self.fallback(FallbackReason::LlmFailed(error.to_string()));
            }
        };
        let grounded = ground_completion(
            &self.question,
            &completion,
            &self.sent,
            &self.corpus,
            &self.query_terms,
            self.mode,
        );
        match grounded {
            Some(mut answer) => {
                answer.coverage = self.coverage;
                answer.latency_ms = elapsed_ms(self.started);
                answer
            }
            None => {
                tracing::warn!(
                    "LLM answer had no supported cited sentence; using the extractive answer"
                );
                // The tokens were spent all the same: budgets and metrics count them.
                let usage = completion.usage;
                let mut answer = self.fallback(FallbackReason::Ungrounded);
                answer.usage = Some(usage);
                answer
            }
        }
    }

    fn fallback(self, reason: FallbackReason) -> Answer {
        let mut answer = self.extractive;
        answer.note = Some(reason.reader_note().to_string());
        answer.fallback = Some(reason);
        answer.latency_ms = elapsed_ms(self.started);
        answer
    }
}

enum StreamState {
    Running {
        llm_stream: BoxStream<'static, Result<LlmEvent, LlmError>>,
        text: String,
        context: Box<StreamContext>,
    },
    Done,
}

async fn next_answer_event(state: StreamState) -> Option<(AnswerEvent, StreamState)> {
    let StreamState::Running {
        mut llm_stream,
        mut text,
        context,
    } = state
    else {
        return None;
    };
    let answer = match llm_stream.next().await {
        Some(Ok(LlmEvent::TextDelta(delta))) => {
            text.push_str(&delta);
            let partial = AnswerEvent::Partial(text.clone());
            return Some((
                partial,
                StreamState::Running {
                    llm_stream,
                    text,
                    context,
                },
            ));
        }
        Some(Ok(LlmEvent::Done(completion))) => context.finish(Ok(completion)),
        Some(Err(error)) => context.finish(Err(error)),
        None => context.finish(Err(LlmError::Stream("the stream ended early".to_string()))),
    };
    Some((AnswerEvent::Final(answer), StreamState::Done))
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
