//! The field's vocabulary (abbreviations and synonyms), loaded from `corpus/vocabulary.toml`.

use super::CorpusError;
use serde::Deserialize;
use std::path::Path;

/// One set of interchangeable terms ("tc", "total comp", "compensation", ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabularyGroup {
    pub terms: Vec<String>,
}

/// Synonym groups that widen a query with the words the guides actually use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    #[serde(default)]
    pub synonyms: Vec<VocabularyGroup>,
    /// Words that shape a question but say nothing about its topic ("what", "how", "should"):
    /// search ignores them, so they neither find passages nor count when judging relevance.
    #[serde(default)]
    pub question_words: Vec<String>,
}

impl Vocabulary {
    /// Parses the TOML file; errors name the file and line.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vocabulary, CorpusError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| CorpusError::invalid(path, 1, "the vocabulary is not valid UTF-8"))?;
        let mut vocabulary: Vocabulary = toml::from_str(text).map_err(|error| {
            let line = crate::util::toml::error_line(text, &error, 1);
            CorpusError::invalid(path, line, format!("bad vocabulary: {}", error.message()))
        })?;
        for group in &mut vocabulary.synonyms {
            for term in &mut group.terms {
                *term = normalize_phrase(term);
            }
            group.terms.retain(|term| !term.is_empty());
        }
        for word in &mut vocabulary.question_words {
            *word = normalize_phrase(word);
        }
        Ok(vocabulary)
    }

    /// The synonyms of every group whose term appears in `query` (as whole words), without the terms
    /// the query already has. Order is stable: group order, then term order.
    pub fn expansions(&self, query: &str) -> Vec<String> {
        let normalized = format!(" {} ", normalize_phrase(query));
        let mut expansions: Vec<String> = Vec::new();
        for group in &self.synonyms {
            let matched = group
                .terms
                .iter()
                .any(|term| normalized.contains(&format!(" {term} ")));
            if !matched {
                continue;
            }
            for term in &group.terms {
                let present = normalized.contains(&format!(" {term} "));
                if !present && !expansions.contains(term) {
                    expansions.push(term.clone());
                }
            }
        }
        expansions
    }
}

/// Lowercases and keeps letters, digits and the few symbols that carry meaning in this field
/// ("a/b", "c++", "w&b", "mts-3"); everything else becomes a space.
pub fn normalize_phrase(text: &str) -> String {
    let mut normalized = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_alphanumeric() || matches!(character, '/' | '+' | '&' | '-') {
            normalized.extend(character.to_lowercase());
        } else {
            normalized.push(' ');
        }
    }
    normalized.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary::parse(
            Path::new("vocabulary.toml"),
            br#"
[[synonyms]]
terms = ["TC", "total comp", "salary"]
[[synonyms]]
terms = ["mle", "machine learning engineer"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_term_in_the_query_brings_its_group() {
        assert_eq!(
            vocabulary().expansions("What's the TC for an MLE?"),
            vec!["total comp", "salary", "machine learning engineer"]
        );
    }

    #[test]
    fn terms_match_whole_words_only() {
        assert!(vocabulary().expansions("etc and mlean").is_empty());
    }

    #[test]
    fn a_bad_file_names_its_line() {
        let error =
            Vocabulary::parse(Path::new("v.toml"), b"[[synonyms]]\nterms = 3\n").unwrap_err();
        assert!(error.to_string().starts_with("v.toml:2:"), "{error}");
    }
}
