//! From user text to a Tantivy query: cleaning, typo correction against the corpus's own words,
//! vocabulary expansion, and the coverage measure behind "is anything relevant?".

use super::analysis::{self, analyzed_tokens, stem_words};
use super::concepts::{
    canonical_term_indices, concept_exclusion_token, concept_term_token, concept_token,
};
use super::{Fields, MAX_QUERY_CHARS};
use crate::corpus::Corpus;
// Fx hashing for tables built from the guides and for one question's own small sets (a question is
// cut to 2,000 characters); the caches that outlive a question keep SipHash (see the planner).
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

use tantivy::{Searcher, Term};

/// Most distinct content words a query keeps; the rest of a very long message is ignored.
const MAX_CONTENT_WORDS: usize = 64;
/// Most distinct typed tokens searched (the rarest in the corpus); the rest only count for coverage.
const MAX_SEARCHED_TOKENS: usize = 12;
/// Weight of a query that reaches passages only through a synonym, relative to the typed words.
const EXPANSION_BOOST: f32 = 0.6;
/// Weight of a heading word against a body word. Above 1 (a heading says what its text is about),
/// but not by much: with several guides, generic headings ("Ranking", "Training") would otherwise
/// outrank the passage that answers (dev sets: 2.0 → 1.25 raised hit@1 by 0.018 on average).
const HEADING_BOOST: f32 = 1.25;

/// Weight of a query word the corpus never uses, as a multiple of the rarest known word's weight.
const UNKNOWN_WORD_WEIGHT: f32 = 1.0;

/// How much of a question a passage covers: the weighted share, and the weight matched in absolute
/// terms (a long question can be answered by a passage matching several rare ideas of it).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Coverage {
    pub share: f32,
    pub matched_weight: f32,
    /// The question's weightiest idea (its rarest word or group) is matched.
    pub top_matched: bool,
    /// Weight of the weightiest idea the guides know (some passage uses it) that this passage
    /// does not match: a rare word the guides have elsewhere says the passage is about
    /// something else.
    pub unmatched_known: f32,
}

/// One idea in the question: matched when any alternative's stems all appear in a passage.
#[derive(Debug, Clone)]
struct Concept {
    alternatives: Vec<Vec<String>>,
    weight: f32,
    /// The word was not typed as such but corrected from a typo: a match is less certain.
    corrected: bool,
    /// No guide uses the word at all.
    unknown: bool,
}

/// Share of a corrected word's weight that a match earns ("bake" read as "base" proves little).
const CORRECTED_MATCH_CREDIT: f32 = 0.4;

/// A query ready to run, with what coverage needs.
pub struct QueryPlan {
    pub(crate) query: Option<Box<dyn Query>>,
    /// The stems a snippet highlights (typed words and their synonyms) with their weights.
    pub(crate) snippet_stems: Vec<(String, f32)>,
    pub corrections: Vec<(String, String)>,
    pub notice: Option<String>,
    concepts: Vec<Concept>,
    /// Consecutive pairs of the question's searched words, as the index has them ("system",
    /// "design"): a passage holding a pair side by side says what the question says.
    pub(crate) word_pairs: Vec<(String, String)>,
}

impl QueryPlan {
    /// Share of the question's weight carried by words no guide uses.
    pub fn unknown_share(&self) -> f32 {
        let total: f32 = self.concepts.iter().map(|concept| concept.weight).sum();
        let unknown: f32 = self
            .concepts
            .iter()
            .filter(|concept| concept.unknown)
            .map(|concept| concept.weight)
            .sum();
        if total <= 0.0 {
            0.0
        } else {
            unknown / total
        }
    }

    /// How many ideas (words and vocabulary groups) the question has.
    pub fn concept_count(&self) -> usize {
        self.concepts.len()
    }

    /// Every token of every concept with the concept's weight (a token in several concepts keeps
    /// its highest weight), so answers can weigh a sentence by the rarity of what it matches.
    pub fn weighted_terms(&self) -> Vec<(String, f32)> {
        let mut terms: Vec<(String, f32)> = Vec::new();
        for concept in &self.concepts {
            let weight = if concept.corrected {
                concept.weight * CORRECTED_MATCH_CREDIT
            } else {
                concept.weight
            };
            for token in concept.alternatives.iter().flatten() {
                match terms.iter_mut().find(|(seen, _)| seen == token) {
                    Some((_, seen_weight)) => *seen_weight = seen_weight.max(weight),
                    None => terms.push((token.clone(), weight)),
                }
            }
        }
        terms
    }

    /// Every token of every alternative of every concept, deduplicated.
    pub fn terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = Vec::new();
        for concept in &self.concepts {
            for alternative in &concept.alternatives {
                for token in alternative {
                    if !terms.contains(token) {
                        terms.push(token.clone());
                    }
                }
            }
        }
        terms
    }
}

/// Plans queries for one index: knows the corpus's words, its vocabulary and the field boosts.
pub(crate) struct QueryPlanner {
    fields: Fields,
    /// The vocabulary's synonym groups, each term analyzed once when the planner is made.
    groups: Vec<GroupTerms>,
    /// Every group term (group index, term index) by its first stem, so planning looks up the
    /// few terms that can start at each of the question's words instead of trying every term of
    /// every group against the whole question (that was a tenth of the planner's time).
    terms_by_first_stem: HashMap<String, Vec<(usize, usize)>>,
    question_words: HashSet<String>,
    /// Every lowercase word of the corpus with its count, for typo correction.
    lexicon: HashMap<String, u32>,
    lexicon_by_length: HashMap<usize, Vec<String>>,
    /// Hyphenated or slashed words of the guides written as one word ("kmeans" → "k-means",
    /// "tfidf" → "tf-idf"), so a user who joins them still finds them.
    compounds: HashMap<String, Vec<String>>,
    /// Vocabulary terms written with symbols ("c++", "a/b test", "w&b", "tl;dr") and the plain
    /// term of their group they are read as ("cpp", "ab test", "wandb", "tldr"): split into words,
    /// the symbols would be lost ("c++" would read as the letter "c").
    symbol_terms: Vec<(String, String)>,
    /// Typo corrections already worked out (a word → its correction, or none).
    // Keyed by what users type: SipHash, so crafted words cannot pile into one bucket.
    corrections: std::sync::RwLock<std::collections::HashMap<String, Option<String>>>,
    doc_freqs: std::sync::Mutex<std::collections::HashMap<String, FieldFrequencies>>,
}

/// A synonym group's terms, analyzed the two ways planning needs.
struct GroupTerms {
    terms: Vec<GroupTerm>,
}

struct GroupTerm {
    /// Index of the first term of the group that stems alike (see `concepts.rs`).
    canonical: usize,
    /// Stemmed words with stop words kept, to find the term in a question as typed.
    stems: Vec<String>,
    /// The analyzer's tokens, as the index has them (empty for a term of stop words only).
    tokens: Vec<String>,
}

/// A synonym group found in a question: which of its terms were not typed, and whether the typed
/// ones are words the guides use at all.
struct Expansion {
    group_index: usize,
    /// Canonical indices of the typed terms.
    typed: Vec<usize>,
    others: Vec<usize>,
    typed_terms_known: bool,
}

/// Number of passages holding a token in each searched text field.
#[derive(Debug, Clone, Copy, Default)]
struct FieldFrequencies {
    heading: u64,
    subheading: u64,
    guide_title: u64,
    body: u64,
}

impl FieldFrequencies {
    fn of(&self, fields: &Fields, field: Field) -> u64 {
        if field == fields.heading {
            self.heading
        } else if field == fields.subheading {
            self.subheading
        } else if field == fields.guide_title {
            self.guide_title
        } else {
            self.body
        }
    }

    /// The passages' own text (not the guide title) decides how rare a word is.
    fn in_passages(&self) -> u64 {
        self.heading.max(self.subheading).max(self.body)
    }
}

/// Most distinct tokens whose document frequency is cached (bounded: queries are user text).
const DOC_FREQ_CACHE_LIMIT: usize = 50_000;

impl QueryPlanner {
    pub(crate) fn new(fields: Fields, corpus: &Corpus) -> Self {
        // Built once per opened index over every passage (6 million words at 100,000 passages):
        // one reused buffer, and a key allocated only for a word not seen before.
        let mut lexicon: HashMap<String, u32> = HashMap::default();
        let mut lowercase = String::new();
        let mut add_words = |text: &str| {
            for word in text
                .split(|character: char| !character.is_alphanumeric())
                .filter(|word| !word.is_empty())
            {
                lowercase.clear();
                // Words as the planner reads them: an acronym's plural as its singular.
                let word = analysis::acronym_singular(word).unwrap_or(word);
                if word.is_ascii() {
                    lowercase.push_str(word);
                    lowercase.make_ascii_lowercase();
                } else {
                    lowercase.push_str(&word.to_lowercase());
                }
                match lexicon.get_mut(lowercase.as_str()) {
                    Some(count) => *count += 1,
                    None => {
                        lexicon.insert(lowercase.clone(), 1);
                    }
                }
            }
        };
        for guide in &corpus.guides {
            add_words(&guide.meta.title);
            for section in &guide.sections {
                add_words(&section.heading);
            }
            for passage in &guide.passages {
                add_words(&passage.text);
                if let Some(subheading) = &passage.subheading {
                    add_words(subheading);
                }
                if let Some(context) = &passage.context {
                    add_words(context);
                }
            }
        }
        for group in &corpus.vocabulary.synonyms {
            for term in &group.terms {
                add_words(term);
            }
        }
        let mut compounds: HashMap<String, Vec<String>> = HashMap::default();
        let mut add_compounds = |text: &str| {
            for word in text.split_whitespace() {
                let word = word.trim_matches(|c: char| !c.is_alphanumeric());
                if !word.contains(['-', '/']) {
                    continue;
                }
                let parts = alphanumeric_runs(word);
                if parts.len() < 2 {
                    continue;
                }
                let joined: String = parts.concat();
                if joined.chars().count() >= 3 && !compounds.contains_key(&joined) {
                    compounds.insert(joined, parts);
                }
            }
        };
        for guide in &corpus.guides {
            for passage in &guide.passages {
                add_compounds(&passage.text);
            }
            for section in &guide.sections {
                add_compounds(&section.heading);
            }
        }
        compounds.retain(|joined, _| !lexicon.contains_key(joined));
        let mut lexicon_by_length: HashMap<usize, Vec<String>> = HashMap::default();
        for word in lexicon.keys() {
            lexicon_by_length
                .entry(word.chars().count())
                .or_default()
                .push(word.clone());
        }
        for words in lexicon_by_length.values_mut() {
            words.sort();
        }
        let canonicals = canonical_term_indices(&corpus.vocabulary);
        let groups: Vec<GroupTerms> = corpus
            .vocabulary
            .synonyms
            .iter()
            .zip(&canonicals)
            .map(|(group, canonicals)| GroupTerms {
                terms: group
                    .terms
                    .iter()
                    .zip(canonicals)
                    .map(|(term, &canonical)| GroupTerm {
                        canonical,
                        stems: stem_words(term),
                        tokens: analyzed_tokens(term),
                    })
                    .collect(),
            })
            .collect();
        let mut terms_by_first_stem: HashMap<String, Vec<(usize, usize)>> = HashMap::default();
        for (group_index, group) in groups.iter().enumerate() {
            for (term_index, term) in group.terms.iter().enumerate() {
                if let Some(first) = term.stems.first() {
                    terms_by_first_stem
                        .entry(first.clone())
                        .or_default()
                        .push((group_index, term_index));
                }
            }
        }
        let question_words = corpus
            .vocabulary
            .question_words
            .iter()
            .flat_map(|word| alphanumeric_runs(word))
            .collect();
        QueryPlanner {
            fields,
            groups,
            terms_by_first_stem,
            question_words,
            symbol_terms: symbol_terms(&corpus.vocabulary),
            corrections: std::sync::RwLock::new(std::collections::HashMap::new()),
            lexicon,
            lexicon_by_length,
            compounds,
            doc_freqs: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Turns user text into a query. Never fails: text with no searchable word gives no query.
    pub(crate) fn plan(&self, text: &str, searcher: &Searcher) -> QueryPlan {
        let mut notice = None;
        let text = if text.chars().count() > MAX_QUERY_CHARS {
            notice = Some(format!(
                "Only the first {MAX_QUERY_CHARS} characters of the question were searched."
            ));
            text.chars().take(MAX_QUERY_CHARS).collect::<String>()
        } else {
            text.to_string()
        };
        let text = self.replace_symbol_terms(&text);

        // Words, corrected, without question words, each once, at most MAX_CONTENT_WORDS.
        let mut corrections = Vec::new();
        let mut words: Vec<String> = Vec::new();
        let raw_words =
            alphanumeric_runs(&text)
                .into_iter()
                .flat_map(|raw| match self.compounds.get(&raw) {
                    Some(parts) => parts.clone(),
                    None => vec![raw],
                });
        for raw in raw_words {
            if self.question_words.contains(&raw) || is_contraction_fragment(&raw) {
                continue;
            }
            let word = match self.correct(&raw) {
                Some(corrected) => {
                    if !corrections.iter().any(|(from, _)| from == &raw) {
                        corrections.push((raw.clone(), corrected.clone()));
                    }
                    corrected
                }
                None => raw,
            };
            if !words.contains(&word) {
                words.push(word);
            }
            if words.len() >= MAX_CONTENT_WORDS {
                break;
            }
        }
        // Each word is stemmed once: with stop words kept (to match vocabulary terms as typed) and
        // as the index has it.
        let word_stems: Vec<Vec<String>> = words.iter().map(|word| stem_words(word)).collect();
        let word_tokens: Vec<Vec<String>> =
            words.iter().map(|word| analyzed_tokens(word)).collect();
        let stemmed_query: Vec<String> = word_stems.iter().flatten().cloned().collect();
        if stemmed_query.is_empty() || word_tokens.iter().all(Vec::is_empty) {
            return QueryPlan {
                query: None,
                snippet_stems: Vec::new(),
                corrections,
                notice: notice
                    .or_else(|| Some("The question has no words to search for.".to_string())),
                concepts: Vec::new(),
                word_pairs: Vec::new(),
            };
        }

        // Vocabulary groups present in the query, matched on stems so plurals count.
        let mut concepts = Vec::new();
        let mut consumed: HashSet<&str> = HashSet::default();
        let mut expansions: Vec<Expansion> = Vec::new();
        let named = self.named_group_terms(&stemmed_query);
        for terms_of_group in named.chunk_by(|a, b| a.0 == b.0) {
            let group_index = terms_of_group[0].0;
            let group = &self.groups[group_index];
            let typed: Vec<bool> = (0..group.terms.len())
                .map(|term_index| {
                    terms_of_group
                        .iter()
                        .any(|&(_, named_term)| named_term == term_index)
                })
                .collect();
            for (term, _) in group.terms.iter().zip(&typed).filter(|(_, typed)| **typed) {
                consumed.extend(term.stems.iter().map(String::as_str));
            }
            let alternatives: Vec<Vec<String>> = group
                .terms
                .iter()
                .map(|term| term.tokens.clone())
                .filter(|tokens| !tokens.is_empty())
                .collect();
            let weight = alternatives
                .iter()
                .filter_map(|tokens| tokens.first())
                .map(|token| self.idf(searcher, token))
                .filter(|weight| weight.is_finite())
                .fold(0.0_f32, f32::max);
            let weight = if weight > 0.0 {
                weight
            } else {
                self.unknown_weight(searcher)
            };
            if !alternatives.is_empty() {
                concepts.push(Concept {
                    alternatives,
                    weight,
                    corrected: false,
                    unknown: false,
                });
            }
            // Whether the typed terms are words the guides use at all ("tc", "yoe" are not: then
            // the synonyms carry the full weight).
            let typed_terms_known = group
                .terms
                .iter()
                .zip(&typed)
                .filter(|(_, typed)| **typed)
                .any(|(term, _)| {
                    term.tokens
                        .iter()
                        .all(|token| self.doc_freq(searcher, token) > 0)
                });
            let others: Vec<usize> = typed
                .iter()
                .enumerate()
                .filter(|(_, typed)| !**typed)
                .map(|(term_index, _)| term_index)
                .collect();
            let mut typed_canonicals: Vec<usize> = group
                .terms
                .iter()
                .zip(&typed)
                .filter(|(_, typed)| **typed)
                .map(|(term, _)| term.canonical)
                .collect();
            typed_canonicals.sort_unstable();
            typed_canonicals.dedup();
            expansions.push(Expansion {
                group_index,
                typed: typed_canonicals,
                others,
                typed_terms_known,
            });
        }
        let corrected_words: HashSet<&str> =
            corrections.iter().map(|(_, to)| to.as_str()).collect();
        let mut seen_tokens: HashSet<&str> = HashSet::default();
        for (word, tokens) in words.iter().zip(&word_tokens) {
            let corrected = corrected_words.contains(word.as_str());
            for token in tokens {
                if consumed.contains(token.as_str()) || !seen_tokens.insert(token) {
                    continue;
                }
                let frequency = self.doc_freq(searcher, token);
                let weight = match frequency {
                    0 => self.unknown_weight(searcher),
                    _ => self.idf(searcher, token),
                };
                concepts.push(Concept {
                    alternatives: vec![vec![token.clone()]],
                    weight,
                    corrected,
                    unknown: frequency == 0,
                });
            }
        }

        // The typed words' tokens, as the index has them (every text field shares the analyzer),
        // each once, in order. They are laid out over the searched fields as one flat union of
        // boosted term queries, the same BM25 sum a multi-field parser builds, in a shape Tantivy
        // can prune with block-WAND.
        let mut typed_tokens: Vec<(u64, String)> = Vec::new();
        for token in word_tokens.iter().flatten() {
            if !typed_tokens.iter().any(|(_, seen)| seen == token) {
                typed_tokens.push((self.doc_freq(searcher, token), token.clone()));
            }
        }
        // A long message names many common words; each adds a posting list to walk but barely
        // moves BM25. The rarest ones carry the ranking, so only they are searched (every word
        // still counts toward coverage, so relevance judges the whole question).
        if typed_tokens.len() > MAX_SEARCHED_TOKENS {
            typed_tokens.sort();
            typed_tokens.truncate(MAX_SEARCHED_TOKENS);
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut snippet_stems: Vec<(String, f32)> = Vec::new();
        for (_, token) in &typed_tokens {
            let frequencies = self.field_doc_freqs(searcher, token);
            for (field, boost) in self.text_field_boosts() {
                // A term absent from a field would only cost a dictionary lookup to find nothing.
                if frequencies.of(&self.fields, field) > 0 {
                    let term = Term::from_field_text(field, token);
                    clauses.push((Occur::Should, boosted_term(term, boost)));
                }
            }
            snippet_stems.push((token.clone(), self.idf(searcher, token)));
        }
        for expansion in &expansions {
            // Concept tokens (see concepts.rs) stand for the synonyms, each group's mentions
            // counted together as one term. When the typed words are not in the guides ("tc"),
            // the group's token matches them all. When they are, the typed words already score:
            // the group's other terms are added with a lower weight through an exclusion token.
            let group = expansion.group_index;
            let (fields, token, boost): ([(Field, f32); 2], String, f32) =
                if expansion.typed_terms_known {
                    // Several typed terms ("mid" and "mid level"): one exclusion token is searched, that
                    // of the typed term the passages mention least, so the others' mentions count
                    // twice. Chosen on the eval set: excluding the most mentioned one instead dropped
                    // hit@1 from 0.978 to 0.948; a token per other term costs a posting list each.
                    let excluded = expansion
                        .typed
                        .iter()
                        .copied()
                        .min_by_key(|canonical| {
                            let term = Term::from_field_text(
                                self.fields.body_concepts,
                                &concept_term_token(group, *canonical),
                            );
                            searcher.doc_freq(&term).unwrap_or(0)
                        })
                        .unwrap_or(0);
                    (
                        self.exclusion_field_boosts(),
                        concept_exclusion_token(group, excluded),
                        EXPANSION_BOOST,
                    )
                } else {
                    (self.concept_field_boosts(), concept_token(group), 1.0)
                };
            let tokens = [(token, boost)];
            for (token, boost) in &tokens {
                for (field, field_boost) in fields {
                    let term = Term::from_field_text(field, token);
                    clauses.push((Occur::Should, boosted_term(term, field_boost * boost)));
                }
            }
            for term_index in &expansion.others {
                for token in &self.groups[group].terms[*term_index].tokens {
                    if !snippet_stems.iter().any(|(seen, _)| seen == token) {
                        let weight = self.idf(searcher, token) * EXPANSION_BOOST;
                        snippet_stems.push((token.clone(), weight));
                    }
                }
            }
        }
        let query: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        let ordered: Vec<&String> = word_tokens.iter().flatten().collect();
        let word_pairs = ordered
            .windows(2)
            .filter(|pair| pair[0] != pair[1])
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect();
        QueryPlan {
            query: Some(query),
            snippet_stems,
            corrections,
            notice,
            concepts,
            word_pairs,
        }
    }

    /// The vocabulary terms whose stems appear in `stems` as a sequence, as (group index, term
    /// index), sorted and each once: the groups the question names, in the vocabulary's order.
    fn named_group_terms(&self, stems: &[String]) -> Vec<(usize, usize)> {
        let mut named: Vec<(usize, usize)> = Vec::new();
        for stem in stems {
            let Some(terms) = self.terms_by_first_stem.get(stem) else {
                continue;
            };
            for &(group_index, term_index) in terms {
                let term = &self.groups[group_index].terms[term_index];
                if contains_sequence(stems, &term.stems) {
                    named.push((group_index, term_index));
                }
            }
        }
        named.sort_unstable();
        named.dedup();
        named
    }

    /// Plans a follow-up: `text` at full weight, and the ideas of `borrowed` (an earlier question
    /// of the conversation) it does not name itself at `weight` (0..=1), both in the query and in
    /// coverage. A follow-up with no searchable word of its own ("why?") is the borrowed question
    /// at full weight: there is nothing for it to weigh less than.
    pub(crate) fn plan_with_borrowed(
        &self,
        text: &str,
        borrowed: &str,
        weight: f32,
        searcher: &Searcher,
    ) -> QueryPlan {
        let own = self.plan(text, searcher);
        let earlier = self.plan(borrowed, searcher);
        let Some(earlier_query) = earlier.query else {
            return own;
        };
        let Some(own_query) = own.query else {
            return QueryPlan {
                query: Some(earlier_query),
                ..earlier
            };
        };
        let weight = weight.clamp(0.0, 1.0);
        let own_tokens: HashSet<&String> = own
            .concepts
            .iter()
            .flat_map(|concept| concept.alternatives.iter().flatten())
            .collect();
        let mut concepts = own.concepts.clone();
        for concept in earlier.concepts {
            let named = concept
                .alternatives
                .iter()
                .flatten()
                .any(|token| own_tokens.contains(token));
            if !named {
                concepts.push(Concept {
                    weight: concept.weight * weight,
                    // A word the guides never use says nothing about the follow-up.
                    unknown: false,
                    ..concept
                });
            }
        }
        let mut snippet_stems = own.snippet_stems;
        for (stem, stem_weight) in earlier.snippet_stems {
            if !snippet_stems.iter().any(|(seen, _)| *seen == stem) {
                snippet_stems.push((stem, stem_weight * weight));
            }
        }
        let query: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::Should, own_query),
            (
                Occur::Should,
                Box::new(BoostQuery::new(earlier_query, weight)),
            ),
        ]));
        QueryPlan {
            query: Some(query),
            snippet_stems,
            corrections: own.corrections,
            notice: own.notice,
            concepts,
            word_pairs: own.word_pairs,
        }
    }

    /// The text with each vocabulary term written with symbols replaced by its group's plain term,
    /// where it stands alone (not inside a longer word).
    fn replace_symbol_terms(&self, text: &str) -> String {
        if self.symbol_terms.is_empty() || text.chars().all(|c| c.is_alphanumeric() || c == ' ') {
            return text.to_string();
        }
        let mut lowered = text.to_lowercase();
        // The capitals of the rest are kept where lower-casing keeps byte offsets (ASCII): they
        // mark acronyms ("GPUs").
        let mut kept = text.is_ascii().then(|| text.to_string());
        for (from, to) in &self.symbol_terms {
            let mut search_from = 0;
            while let Some(found) = lowered[search_from..].find(from.as_str()) {
                let start = search_from + found;
                let end = start + from.len();
                let bounded_before = lowered[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric());
                let bounded_after = lowered[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric());
                if bounded_before && bounded_after {
                    let replacement = format!(" {to} ");
                    if let Some(kept) = kept.as_mut() {
                        kept.replace_range(start..end, &replacement);
                    }
                    lowered.replace_range(start..end, &replacement);
                    search_from = start + to.len() + 2;
                } else {
                    search_from = end;
                }
            }
        }
        kept.unwrap_or(lowered)
    }

    /// Share of the question's weighted concepts that a passage (heading, text, context) covers.
    pub(crate) fn coverage_of_tokens(&self, plan: &QueryPlan, passage_tokens: &str) -> Coverage {
        if plan.concepts.is_empty() {
            return Coverage::default();
        }
        // The passage's analyzed tokens were stored at index time, sorted: no stemming and no
        // hashing per query.
        let tokens: Vec<&str> = passage_tokens.split(' ').collect();
        let contains = |token: &str| tokens.binary_search(&token).is_ok();
        let matched: Vec<bool> = plan
            .concepts
            .iter()
            .map(|concept| {
                concept
                    .alternatives
                    .iter()
                    .any(|alternative| alternative.iter().all(|token| contains(token.as_str())))
            })
            .collect();
        coverage_from(plan, &matched)
    }

    /// [`QueryPlanner::coverage_of_tokens`] over interned token ids: the plan's ids (from
    /// [`TokenIds::plan_ids`]) against a passage's sorted ids. No strings compared.
    pub(crate) fn coverage_of_ids(
        plan: &QueryPlan,
        plan_ids: &PlanIds,
        passage: &[u32],
    ) -> Coverage {
        if plan.concepts.is_empty() {
            return Coverage::default();
        }
        let matched: Vec<bool> = plan_ids
            .concepts
            .iter()
            .map(|alternatives| {
                alternatives.iter().any(|alternative| {
                    alternative
                        .as_ref()
                        .is_some_and(|ids| ids.iter().all(|id| passage.binary_search(id).is_ok()))
                })
            })
            .collect();
        coverage_from(plan, &matched)
    }

    /// Share of the plan's word pairs that stand side by side in a passage (its sorted pair keys).
    pub(crate) fn pair_share_of_ids(plan: &QueryPlan, plan_ids: &PlanIds, passage: &[u64]) -> f32 {
        if plan.word_pairs.is_empty() {
            return 0.0;
        }
        let matched = plan_ids
            .pairs
            .iter()
            .flatten()
            .filter(|key| passage.binary_search(key).is_ok())
            .count();
        matched as f32 / plan.word_pairs.len() as f32
    }

    /// [`QueryPlanner::pair_share_of_ids`] for an index too large to keep passages' ids: the
    /// passage's pair text is analyzed now.
    pub(crate) fn pair_share_of_text(plan: &QueryPlan, source: &PairText) -> f32 {
        if plan.word_pairs.is_empty() {
            return 0.0;
        }
        let tokens = analyzed_tokens(&source.text);
        let row_tokens = source
            .row
            .as_deref()
            .map(analyzed_tokens)
            .unwrap_or_default();
        let matched = plan
            .word_pairs
            .iter()
            .filter(|(first, second)| {
                let in_row = row_tokens.contains(first) && row_tokens.contains(second);
                in_row
                    || tokens.windows(2).any(|neighbours| {
                        (&neighbours[0] == first && &neighbours[1] == second)
                            || (&neighbours[0] == second && &neighbours[1] == first)
                    })
            })
            .count();
        matched as f32 / plan.word_pairs.len() as f32
    }

    /// The text fields a typed word is searched in, with its weight in each relative to the
    /// body: headings say what a passage is about, the guide title less so. A bold question line
    /// keeps twice a body word's weight: it names one answer, where a heading names a topic.
    fn text_field_boosts(&self) -> [(Field, f32); 4] {
        [
            (self.fields.heading, HEADING_BOOST),
            (self.fields.subheading, 2.0),
            (self.fields.guide_title, 0.5),
            (self.fields.body, 1.0),
        ]
    }

    /// The concept fields with the same boosts as the text fields they are drawn from.
    fn concept_field_boosts(&self) -> [(Field, f32); 2] {
        [
            (self.fields.heading_concepts, HEADING_BOOST),
            (self.fields.body_concepts, 1.0),
        ]
    }

    /// The exclusion fields, weighted as the concept fields.
    fn exclusion_field_boosts(&self) -> [(Field, f32); 2] {
        [
            (self.fields.heading_exclusions, 2.0),
            (self.fields.body_exclusions, 1.0),
        ]
    }

    /// Passages holding `token` in their heading or text (the more of the two).
    fn doc_freq(&self, searcher: &Searcher, token: &str) -> u64 {
        self.field_doc_freqs(searcher, token).in_passages()
    }

    fn field_doc_freqs(&self, searcher: &Searcher, token: &str) -> FieldFrequencies {
        // The index never changes under a planner (reloads build a new engine), so document
        // frequencies are cached for its lifetime.
        if let Ok(cache) = self.doc_freqs.lock() {
            if let Some(&frequencies) = cache.get(token) {
                return frequencies;
            }
        }
        let in_field = |field: Field| {
            searcher
                .doc_freq(&Term::from_field_text(field, token))
                .unwrap_or(0)
        };
        let frequencies = FieldFrequencies {
            heading: in_field(self.fields.heading),
            subheading: in_field(self.fields.subheading),
            guide_title: in_field(self.fields.guide_title),
            body: in_field(self.fields.body),
        };
        if let Ok(mut cache) = self.doc_freqs.lock() {
            if cache.len() < DOC_FREQ_CACHE_LIMIT {
                cache.insert(token.to_string(), frequencies);
            }
        }
        frequencies
    }

    fn idf(&self, searcher: &Searcher, token: &str) -> f32 {
        let documents = searcher.num_docs().max(1) as f32;
        let frequency = self.doc_freq(searcher, token) as f32;
        if frequency == 0.0 {
            return 0.0;
        }
        (1.0 + (documents - frequency + 0.5) / (frequency + 0.5)).ln()
    }

    fn unknown_weight(&self, searcher: &Searcher) -> f32 {
        let documents = searcher.num_docs().max(1) as f32;
        let rarest = (1.0 + (documents - 1.0 + 0.5) / 1.5).ln();
        rarest * UNKNOWN_WORD_WEIGHT
    }

    /// The corpus word closest to an unknown word, if one is close enough to be a typo.
    fn correct(&self, word: &str) -> Option<String> {
        // The same word is corrected the same way for the life of the index: remember it.
        if let Ok(cache) = self.corrections.read() {
            if let Some(known) = cache.get(word) {
                return known.clone();
            }
        }
        let corrected = self.correct_uncached(word);
        if let Ok(mut cache) = self.corrections.write() {
            if cache.len() < DOC_FREQ_CACHE_LIMIT {
                cache.insert(word.to_string(), corrected.clone());
            }
        }
        corrected
    }

    fn correct_uncached(&self, word: &str) -> Option<String> {
        let length = word.chars().count();
        if length < 4 || self.lexicon.contains_key(word) || !word.chars().all(char::is_alphabetic) {
            return None;
        }
        let max_distance = if length < 8 { 1 } else { 2 };
        let first_letter = word.chars().next();
        let mut best: Option<(usize, u32, &String)> = None;
        for candidate_length in length.saturating_sub(max_distance)..=length + max_distance {
            let Some(candidates) = self.lexicon_by_length.get(&candidate_length) else {
                continue;
            };
            for candidate in candidates {
                if candidate.chars().next() != first_letter {
                    continue;
                }
                let distance = strsim::osa_distance(word, candidate);
                if distance == 0 || distance > max_distance {
                    continue;
                }
                let count = self.lexicon.get(candidate).copied().unwrap_or(0);
                let better = match best {
                    None => true,
                    Some((best_distance, best_count, _)) => {
                        distance < best_distance
                            || (distance == best_distance && count > best_count)
                    }
                };
                if better {
                    best = Some((distance, count, candidate));
                }
            }
        }
        best.map(|(_, _, candidate)| candidate.clone())
    }
}

/// Each vocabulary term that has symbols in it (other than '-' and spaces, which split into words
/// harmlessly) with the first plain term of its group, longest terms first.
fn symbol_terms(vocabulary: &crate::corpus::Vocabulary) -> Vec<(String, String)> {
    let plain = |term: &str| {
        term.chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for group in &vocabulary.synonyms {
        let Some(replacement) = group.terms.iter().find(|term| plain(term)) else {
            continue;
        };
        for term in group.terms.iter().filter(|term| !plain(term)) {
            pairs.push((term.to_lowercase(), replacement.to_lowercase()));
        }
    }
    pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    pairs
}

/// The coverage of a passage given which of the plan's concepts it matches.
fn coverage_from(plan: &QueryPlan, matched: &[bool]) -> Coverage {
    let concepts = || plan.concepts.iter().zip(matched.iter().copied());
    let total: f32 = plan.concepts.iter().map(|concept| concept.weight).sum();
    let covered: f32 = concepts()
        .filter(|(_, matched)| *matched)
        .map(|(concept, _)| {
            if concept.corrected {
                concept.weight * CORRECTED_MATCH_CREDIT
            } else {
                concept.weight
            }
        })
        .sum();
    let top_matched = concepts()
        .max_by(|a, b| a.0.weight.total_cmp(&b.0.weight))
        .is_some_and(|(_, matched)| matched);
    let unmatched_known = concepts()
        .filter(|(concept, matched)| !concept.unknown && !concept.corrected && !matched)
        .map(|(concept, _)| concept.weight)
        .fold(0.0_f32, f32::max);
    Coverage {
        share: if total <= 0.0 { 0.0 } else { covered / total },
        matched_weight: covered,
        top_matched,
        unmatched_known,
    }
}

/// Every token of a small index's passages as a number, so coverage compares numbers, not
/// strings (built once when the index opens).
#[derive(Debug, Default)]
pub(crate) struct TokenIds {
    ids: HashMap<String, u32>,
}

/// A plan's concept alternatives as token ids; `None` for an alternative with a token no passage
/// has (it can never match).
pub(crate) struct PlanIds {
    concepts: Vec<Vec<Option<Vec<u32>>>>,
    /// The plan's word pairs as [`pair_key`]s; `None` for a pair no passage can hold.
    pairs: Vec<Option<u64>>,
}

/// One passage's tokens as numbers, built once when a small index opens.
pub(crate) struct PassageIds {
    /// Its distinct tokens' ids, sorted (for coverage).
    pub(crate) tokens: Box<[u32]>,
    /// Its neighbouring token pairs as [`pair_key`]s, sorted (for word pairs).
    pub(crate) pairs: Box<[u64]>,
}

/// What a passage's word pairs are read from ([`TokenIds::intern_pairs`]).
pub(crate) struct PairText {
    /// Its headings and text, in order: neighbouring words there are pairs.
    pub(crate) text: String,
    /// A table row's cells with their column names ("Company: Google MLE; Level: L4"): they
    /// describe one thing in any column order, so every two of its words count as side by side.
    pub(crate) row: Option<String>,
}

/// Two neighbouring tokens as one number, in either order.
fn pair_key(first: u32, second: u32) -> u64 {
    let (low, high) = if first <= second {
        (first, second)
    } else {
        (second, first)
    };
    (u64::from(low) << 32) | u64::from(high)
}

impl TokenIds {
    /// The sorted ids of a passage's stored tokens, adding new tokens to the table.
    pub(crate) fn intern(&mut self, passage_tokens: &str) -> Box<[u32]> {
        let mut ids: Vec<u32> = passage_tokens
            .split(' ')
            .filter(|token| !token.is_empty())
            .map(|token| self.id(token))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_boxed_slice()
    }

    /// The sorted [`pair_key`]s of the neighbouring tokens of a passage's [`PairText`] (analyzed
    /// as the index is, every two tokens of a table row's cells included), adding new tokens to
    /// the table.
    pub(crate) fn intern_pairs(&mut self, source: &PairText) -> Box<[u64]> {
        let mut keys = Vec::new();
        let mut previous: Option<u32> = None;
        analysis::for_each_analyzed_token(&source.text, |token| {
            let id = self.id(token);
            if let Some(previous) = previous.filter(|&previous| previous != id) {
                keys.push(pair_key(previous, id));
            }
            previous = Some(id);
        });
        if let Some(row) = source.row.as_deref() {
            let mut cells: Vec<u32> = Vec::new();
            analysis::for_each_analyzed_token(row, |token| cells.push(self.id(token)));
            cells.sort_unstable();
            cells.dedup();
            for (index, &first) in cells.iter().enumerate() {
                for &second in &cells[index + 1..] {
                    keys.push(pair_key(first, second));
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys.into_boxed_slice()
    }

    /// The id of `token`, added to the table when new.
    fn id(&mut self, token: &str) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(token.to_string()).or_insert(next)
    }

    pub(crate) fn plan_ids(&self, plan: &QueryPlan) -> PlanIds {
        PlanIds {
            pairs: plan
                .word_pairs
                .iter()
                .map(|(first, second)| {
                    Some(pair_key(*self.ids.get(first)?, *self.ids.get(second)?))
                })
                .collect(),
            concepts: plan
                .concepts
                .iter()
                .map(|concept| {
                    concept
                        .alternatives
                        .iter()
                        .map(|alternative| {
                            alternative
                                .iter()
                                .map(|token| self.ids.get(token).copied())
                                .collect::<Option<Vec<u32>>>()
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

/// Lowercase runs of letters and digits ("MTS-3" → "mts", "3"), the units of typo correction,
/// an acronym's plural read as its singular before its capitals are lost ("GPUs" → "gpu").
fn alphanumeric_runs(text: &str) -> Vec<String> {
    text.split(|character: char| !character.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            analysis::acronym_singular(word)
                .unwrap_or(word)
                .to_lowercase()
        })
        .collect()
}

/// Leftovers of "what's", "you'll", "don't" once split at the apostrophe, and lone letters.
fn is_contraction_fragment(word: &str) -> bool {
    let single_letter = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
    single_letter || matches!(word, "ll" | "re" | "ve" | "nt")
}

/// A term query scaled by `boost`; frequencies are read so BM25 and block-WAND can use them.
fn boosted_term(term: Term, boost: f32) -> Box<dyn Query> {
    Box::new(BoostQuery::new(
        Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
        boost,
    ))
}

fn contains_sequence(haystack: &[String], needle: &[String]) -> bool {
    !needle.is_empty()
        && haystack.len() >= needle.len()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_terms_read_as_their_plain_synonym() {
        let vocabulary = crate::corpus::Vocabulary::parse(
            std::path::Path::new("vocabulary.toml"),
            b"[[synonyms]]\nterms = [\"c++\", \"cpp\"]\n[[synonyms]]\nterms = [\"a/b test\", \"ab test\"]\n",
        )
        .expect("vocabulary parses");
        let terms = symbol_terms(&vocabulary);
        assert_eq!(
            terms,
            vec![
                ("a/b test".to_string(), "ab test".to_string()),
                ("c++".to_string(), "cpp".to_string())
            ]
        );
    }

    #[test]
    fn sequences_match_whole_stems() {
        let haystack = stem_words("what do machine learning engineers earn");
        assert!(contains_sequence(
            &haystack,
            &stem_words("machine learning engineer")
        ));
        assert!(!contains_sequence(
            &haystack,
            &stem_words("learning machine")
        ));
    }
}
