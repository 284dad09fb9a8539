//! Vocabulary concepts at index time: each mention of a synonym group's term in a passage becomes
//! two tokens, `g<N>` for group N ("total comp", "salary" and "pay" are all `g0`) and `g<N>t<M>` for
//! its term M, so a query widens to a group's synonyms with term lookups instead of a phrase query
//! per synonym. A third kind, `g<N>x<M>` ("a mention of group N by any term but M"), goes to
//! separate exclusion fields: a question that types one term of a group widens to the others with
//! a single term, without counting the typed word's own mentions twice. `g<N>t<M>` is not searched;
//! its document frequency tells the planner which typed term the passages mention least.
//!
//! Why: phrase queries read positions for every passage holding their words, which on a corpus of
//! 100,000 passages costs tens of milliseconds, and a query mixing phrases and terms cannot use
//! Tantivy's block-WAND pruning. A concept token is an ordinary term, so the whole query stays a
//! flat union of terms. The index fingerprint covers the vocabulary file, so editing it rebuilds
//! the index and the tokens never disagree with the groups the query planner reads.

use super::analysis::{analyzed_tokens, stem_words};
use crate::corpus::Vocabulary;
// Fx hashing: these tables are built from the guides' vocabulary, not from what users type.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// The token standing for any term of synonym group `group_index` in the concept fields.
pub(crate) fn concept_token(group_index: usize) -> String {
    format!("g{group_index}")
}

/// The token standing for term `term_index` of synonym group `group_index`. Terms that stem alike
/// ("salary", "salaries") share the first one's token.
pub(crate) fn concept_term_token(group_index: usize, term_index: usize) -> String {
    format!("g{group_index}t{term_index}")
}

/// The token standing for a mention of group `group_index` by any term other than the canonical
/// term `canonical_index` (and the terms that stem like it).
pub(crate) fn concept_exclusion_token(group_index: usize, canonical_index: usize) -> String {
    format!("g{group_index}x{canonical_index}")
}

/// For each group, each term's canonical index: the first term of the group that stems alike
/// ("salaries" → "salary"). Index-time tokens and query planning both name terms by it.
pub(crate) fn canonical_term_indices(vocabulary: &Vocabulary) -> Vec<Vec<usize>> {
    vocabulary
        .synonyms
        .iter()
        .map(|group| {
            let stems: Vec<Vec<String>> = group.terms.iter().map(|term| stem_words(term)).collect();
            stems
                .iter()
                .enumerate()
                .map(|(index, own)| stems.iter().position(|other| other == own).unwrap_or(index))
                .collect()
        })
        .collect()
}

/// What the concept fields of one text index.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ConceptTexts {
    /// Group and term tokens, padded to the text's length (see [`ConceptMatcher::index_texts`]).
    pub concepts: String,
    /// Exclusion tokens, one per mention and other canonical term of its group.
    pub exclusions: String,
}

/// Pads concept fields to their text's length; no query ever asks for it.
const FILLER_TOKEN: &str = "_";

/// A vocabulary term as the matcher looks for it.
#[derive(Debug, Clone, PartialEq)]
struct TermPattern {
    group_index: usize,
    term_index: usize,
    stems: Vec<String>,
}

/// Finds mentions of the vocabulary's groups in text, matching stemmed word sequences (stop words
/// kept, so "member of technical staff" matches as typed), as the query planner does.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConceptMatcher {
    /// First stem of a term → the terms starting with it, longest first.
    by_first_stem: HashMap<String, Vec<TermPattern>>,
    groups: usize,
    /// Distinct canonical term indices of each group.
    canonicals: Vec<Vec<usize>>,
}

impl ConceptMatcher {
    pub(crate) fn new(vocabulary: &Vocabulary) -> Self {
        let mut by_first_stem: HashMap<String, Vec<TermPattern>> = HashMap::default();
        let mut seen: HashSet<(usize, Vec<String>)> = HashSet::default();
        for (group_index, group) in vocabulary.synonyms.iter().enumerate() {
            for (term_index, term) in group.terms.iter().enumerate() {
                let stems = stem_words(term);
                let Some(first) = stems.first().cloned() else {
                    continue;
                };
                if seen.insert((group_index, stems.clone())) {
                    by_first_stem.entry(first).or_default().push(TermPattern {
                        group_index,
                        term_index,
                        stems,
                    });
                }
            }
        }
        for candidates in by_first_stem.values_mut() {
            // Stable: among terms of one length, the vocabulary's order.
            candidates.sort_by_key(|pattern| std::cmp::Reverse(pattern.stems.len()));
        }
        let canonicals = canonical_term_indices(vocabulary)
            .into_iter()
            .map(|mut indices| {
                indices.sort_unstable();
                indices.dedup();
                indices
            })
            .collect();
        ConceptMatcher {
            by_first_stem,
            groups: vocabulary.synonyms.len(),
            canonicals,
        }
    }

    /// What the concept fields index for `text`. The concept tokens are padded with a filler token
    /// (never searched) to the number of words the English analyzer indexes for `text`: the field
    /// norm then equals the text field's, so BM25 normalizes a concept's mentions by the length of
    /// the passage, as it does for a typed word, not by how many concepts the passage names.
    pub(crate) fn index_texts(&self, text: &str) -> ConceptTexts {
        if self.groups == 0 || text.is_empty() {
            return ConceptTexts::default();
        }
        let mut concepts: Vec<String> = Vec::new();
        let mut exclusions: Vec<String> = Vec::new();
        for (group_index, term_index) in self.mentions(text) {
            concepts.push(concept_token(group_index));
            concepts.push(concept_term_token(group_index, term_index));
            for &canonical in &self.canonicals[group_index] {
                if canonical != term_index {
                    exclusions.push(concept_exclusion_token(group_index, canonical));
                }
            }
        }
        let text_length = analyzed_tokens(text).len();
        while concepts.len() < text_length {
            concepts.push(FILLER_TOKEN.to_string());
        }
        ConceptTexts {
            concepts: concepts.join(" "),
            exclusions: exclusions.join(" "),
        }
    }

    /// Each mention of a group's term in `text`, as (group, canonical term), in text order. A
    /// mention counts once per group even where a longer and a shorter term of the group overlap
    /// ("total comp" is one mention of the comp group, not two).
    fn mentions(&self, text: &str) -> Vec<(usize, usize)> {
        let stems = stem_words(text);
        let mut next_free = vec![0_usize; self.groups];
        let mut mentions = Vec::new();
        for (position, stem) in stems.iter().enumerate() {
            let Some(candidates) = self.by_first_stem.get(stem) else {
                continue;
            };
            for pattern in candidates {
                if position < next_free[pattern.group_index] {
                    continue;
                }
                let end = position + pattern.stems.len();
                if end <= stems.len() && stems[position..end] == pattern.stems[..] {
                    mentions.push((pattern.group_index, pattern.term_index));
                    next_free[pattern.group_index] = end;
                }
            }
        }
        mentions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::VocabularyGroup;

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            synonyms: vec![
                VocabularyGroup {
                    terms: vec![
                        "tc".into(),
                        "total comp".into(),
                        "comp".into(),
                        "pay".into(),
                    ],
                },
                VocabularyGroup {
                    terms: vec!["mts".into(), "member of technical staff".into()],
                },
            ],
            question_words: Vec::new(),
        }
    }

    fn concepts(matcher: &ConceptMatcher, text: &str) -> String {
        let texts = matcher.index_texts(text);
        texts
            .concepts
            .split(' ')
            .filter(|token| *token != FILLER_TOKEN)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn overlapping_terms_of_one_group_count_once() {
        let matcher = ConceptMatcher::new(&vocabulary());
        assert_eq!(concepts(&matcher, "Total comp is high"), "g0 g0t1");
        assert_eq!(
            concepts(&matcher, "comp and pay; TC"),
            "g0 g0t2 g0 g0t3 g0 g0t0"
        );
    }

    #[test]
    fn concept_fields_are_padded_to_the_text_length() {
        let matcher = ConceptMatcher::new(&vocabulary());
        // Analyzed: "total", "comp", "high" (stop word "is" dropped): three words.
        assert_eq!(
            matcher.index_texts("Total comp is high").concepts,
            "g0 g0t1 _"
        );
        assert_eq!(matcher.index_texts("nothing here").concepts, "_ _");
    }

    #[test]
    fn exclusion_tokens_name_every_other_term_of_the_group() {
        let matcher = ConceptMatcher::new(&vocabulary());
        assert_eq!(matcher.index_texts("pay").exclusions, "g0x0 g0x1 g0x2");
    }

    #[test]
    fn terms_that_stem_alike_share_the_first_token() {
        let vocabulary = Vocabulary {
            synonyms: vec![VocabularyGroup {
                terms: vec!["salary".into(), "salaries".into()],
            }],
            question_words: Vec::new(),
        };
        let matcher = ConceptMatcher::new(&vocabulary);
        assert_eq!(concepts(&matcher, "salaries"), "g0 g0t0");
        assert_eq!(canonical_term_indices(&vocabulary), vec![vec![0, 0]]);
    }

    #[test]
    fn multi_word_terms_match_with_stop_words_and_plurals() {
        let matcher = ConceptMatcher::new(&vocabulary());
        assert_eq!(
            concepts(&matcher, "Members of Technical Staff at OpenAI get paid"),
            "g1 g1t1"
        );
        assert_eq!(concepts(&matcher, "technical staff"), "");
    }
}
