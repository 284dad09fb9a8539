//! The yardstick: plain Tantivy BM25 over the same passages, with Tantivy's default English
//! analyzer (`en_stem`), no vocabulary, no typo correction, no reranking and no relevance gate.
//! Whatever guidebot adds on top must beat this on every set, or it is not earning its keep.

use super::{Produced, RankedPassage, Retrieved};
use crate::corpus::Corpus;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, Schema, Value, STORED};
use tantivy::{doc, Index, IndexReader, TantivyDocument};

/// Longest baseline answer, in words: the same budget guidebot's extractive answers have.
const ANSWER_WORDS: usize = 120;
/// Passages a baseline search returns.
const HITS: usize = 10;

/// A BM25 index over the corpus's passages (heading and text), in memory.
pub struct Baseline {
    reader: IndexReader,
    parser: QueryParser,
    guide: Field,
    section: Field,
    text: Field,
}

impl Baseline {
    /// Indexes every passage of `corpus`: its heading and its text (with context) as one field each.
    pub fn build(corpus: &Corpus) -> tantivy::Result<Baseline> {
        let mut schema = Schema::builder();
        let guide = schema.add_text_field("guide", STORED);
        let section = schema.add_text_field("section", STORED);
        // Tantivy's default English analyzer is the tokenizer registered as "en_stem".
        let english = tantivy::schema::TextOptions::default()
            .set_indexing_options(
                tantivy::schema::TextFieldIndexing::default()
                    .set_tokenizer("en_stem")
                    .set_index_option(tantivy::schema::IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        let heading = schema.add_text_field("heading", english.clone());
        let text = schema.add_text_field("text", english);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads::<TantivyDocument>(1, 30_000_000)?;
        for passage in corpus.passages() {
            writer.add_document(doc!(
                guide => passage.guide_slug.as_str(),
                section => passage.section_id.as_str(),
                heading => passage.heading.as_str(),
                text => passage.full_text(),
            ))?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        let parser = QueryParser::for_index(&index, vec![heading, text]);
        Ok(Baseline {
            reader,
            parser,
            guide,
            section,
            text,
        })
    }

    /// The top passages for `question`; "relevant" whenever anything matched (no gate).
    pub fn retrieve(&self, question: &str) -> Retrieved {
        let (query, _errors) = self.parser.parse_query_lenient(&plain_words(question));
        let searcher = self.reader.searcher();
        let Ok(top) = searcher.search(&query, &TopDocs::with_limit(HITS).order_by_score()) else {
            return Retrieved::default();
        };
        let passages: Vec<RankedPassage> = top
            .into_iter()
            .filter_map(|(_, address)| searcher.doc::<TantivyDocument>(address).ok())
            .map(|document| RankedPassage {
                guide: stored(&document, self.guide),
                section_id: stored(&document, self.section),
                text: stored(&document, self.text),
            })
            .collect();
        Retrieved {
            relevant: !passages.is_empty(),
            coverage: 0.0,
            features: None,
            passages,
        }
    }

    /// The top passage's text, cut to the answer budget: what a bot with no answer logic shows.
    pub fn answer(&self, question: &str) -> Produced {
        let started = std::time::Instant::now();
        let retrieved = self.retrieve(question);
        let Some(first) = retrieved.passages.first() else {
            return Produced {
                refused: true,
                ..Produced::default()
            };
        };
        let text = first
            .text
            .split_whitespace()
            .take(ANSWER_WORDS)
            .collect::<Vec<_>>()
            .join(" ");
        Produced {
            quotes: vec![(first.guide.clone(), text.clone())],
            text,
            refused: false,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            fell_back: false,
        }
    }
}

fn stored(document: &TantivyDocument, field: Field) -> String {
    document
        .get_first(field)
        .and_then(|value| value.as_str())
        .unwrap_or_default()
        .to_string()
}

/// The question's words only: the query grammar's operators would otherwise change its meaning.
fn plain_words(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_alphanumeric() {
                character
            } else {
                ' '
            }
        })
        .collect()
}
