//! Vocabulary concepts at index time: each mention of a synonym group's term in a passage becomes
//! two tokens, `g<N>` for group N ("total comp", "salary" and "pay" are all `g0`) and `g<N>t<M>` for
//! its term M, so a query widens to a group's synonyms with term lookups instead of a phrase query
//! per synonym.
//!
//! Why: phrase queries read positions for every passage holding their words, which on a corpus of
//! 100,000 passages costs tens of milliseconds, and a query mixing phrases and terms cannot use
//! Tantivy's block-WAND pruning. A concept token is an ordinary term, so the whole query stays a
//! flat union of terms. The index fingerprint covers the vocabulary file, so editing it rebuilds
//! the index and the tokens never disagree with the groups the query planner reads.

use super::query::stem_words;
use crate::corpus::Vocabulary;
use std::collections::{HashMap, HashSet};

/// The token standing for any term of synonym group `group_index` in the concept fields.
pub(crate) fn concept_token(group_index: usize) -> String {
    format!("g{group_index}")
}

/// The token standing for term `term_index` of synonym group `group_index`. Terms that stem alike
/// ("salary", "salaries") share the first one's token.
pub(crate) fn concept_term_token(group_index: usize, term_index: usize) -> String {
    format!("g{group_index}t{term_index}")
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
}

impl ConceptMatcher {
    pub(crate) fn new(vocabulary: &Vocabulary) -> Self {
        let mut by_first_stem: HashMap<String, Vec<TermPattern>> = HashMap::new();
        let mut seen: HashSet<(usize, Vec<String>)> = HashSet::new();
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
        ConceptMatcher {
            by_first_stem,
            groups: vocabulary.synonyms.len(),
        }
    }

    /// What a concept field indexes for `text`: its concept tokens, padded with a filler token
    /// (never searched) to the number of words the English analyzer indexes for `text`. The field
    /// norm then equals the text field's, so BM25 normalizes a concept's mentions by the length of
    /// the passage, as it does for a typed word, not by how many concepts the passage names.
    pub(crate) fn concept_field_text(&self, text: &str) -> String {
        let mut field = self.concept_tokens(text);
        let concept_count = field.split_whitespace().count();
        let text_length = super::query::analyzed_tokens(text).len();
        for _ in concept_count..text_length {
            if !field.is_empty() {
                field.push(' ');
            }
            field.push_str(FILLER_TOKEN);
        }
        field
    }

    /// Two concept tokens per mention of a group's term in `text`, space-separated
    /// ("g0 g0t1 g3 g3t0"). A mention counts once per group even where a longer and a shorter term
    /// of the group overlap ("total comp" is one mention of the comp group, not two).
    pub(crate) fn concept_tokens(&self, text: &str) -> String {
        if self.groups == 0 || text.is_empty() {
            return String::new();
        }
        let stems = stem_words(text);
        let mut next_free = vec![0_usize; self.groups];
        let mut tokens: Vec<String> = Vec::new();
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
                    tokens.push(concept_token(pattern.group_index));
                    tokens.push(concept_term_token(pattern.group_index, pattern.term_index));
                    next_free[pattern.group_index] = end;
                }
            }
        }
        tokens.join(" ")
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

    #[test]
    fn overlapping_terms_of_one_group_count_once() {
        let matcher = ConceptMatcher::new(&vocabulary());
        assert_eq!(matcher.concept_tokens("Total comp is high"), "g0 g0t1");
        assert_eq!(
            matcher.concept_tokens("comp and pay; TC"),
            "g0 g0t2 g0 g0t3 g0 g0t0"
        );
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
        assert_eq!(matcher.concept_tokens("salaries"), "g0 g0t0");
    }

    #[test]
    fn multi_word_terms_match_with_stop_words_and_plurals() {
        let matcher = ConceptMatcher::new(&vocabulary());
        assert_eq!(
            matcher.concept_tokens("Members of Technical Staff at OpenAI get paid"),
            "g1 g1t1"
        );
        assert_eq!(matcher.concept_tokens("technical staff"), "");
    }
}
