//! The API of the core: one loaded corpus and its index, and the operations every front end calls.
//!
//! The CLI, the Discord gateway and the HTTP endpoint all go through [`Engine`]; none of them touch
//! Tantivy or the Markdown directly. The engine is cheap to share (`Arc<Engine>`) and `Sync`.

use crate::corpus::Corpus;
use crate::search::{OpenOutcome, SearchError, SearchIndex, SearchOptions, SearchResults};
use std::path::{Path, PathBuf};

/// Where the engine finds its data. A struct rather than loose arguments so new settings stay named.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub corpus_dir: PathBuf,
    pub index_dir: PathBuf,
}

impl EngineConfig {
    pub fn new(corpus_dir: &Path, index_dir: &Path) -> Self {
        EngineConfig {
            corpus_dir: corpus_dir.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
        }
    }
}

/// Loading the engine failed: the corpus is broken or the index cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Corpus(#[from] crate::corpus::CorpusError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

/// A corpus, its search index and (later) comp data and answer settings, ready to serve.
#[derive(Debug)]
pub struct Engine {
    corpus: Corpus,
    index: SearchIndex,
    open_outcome: OpenOutcome,
}

impl Engine {
    /// Loads the corpus and opens its index, rebuilding the index when it is missing or stale.
    pub fn open(config: &EngineConfig) -> Result<Engine, EngineError> {
        let corpus = Corpus::load(&config.corpus_dir)?;
        let (index, open_outcome) = SearchIndex::open_or_build(&corpus, &config.index_dir)?;
        Ok(Engine {
            corpus,
            index,
            open_outcome,
        })
    }

    /// An engine over an in-memory index, for tests and benchmarks.
    pub fn in_memory(corpus: Corpus) -> Result<Engine, EngineError> {
        let index = SearchIndex::build_in_ram(&corpus)?;
        Ok(Engine {
            corpus,
            index,
            open_outcome: OpenOutcome::Built {
                reason: "in memory".to_string(),
            },
        })
    }

    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    pub fn index(&self) -> &SearchIndex {
        &self.index
    }

    /// Whether opening reused the index on disk or built it.
    pub fn open_outcome(&self) -> &OpenOutcome {
        &self.open_outcome
    }

    /// Searches the guides. See [`SearchIndex::search`].
    pub fn search(
        &self,
        query: &str,
        options: &SearchOptions,
    ) -> Result<SearchResults, SearchError> {
        self.index.search(query, options)
    }
}
