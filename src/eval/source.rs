//! The guides' Markdown sources as plain text, for checking that a quote is verbatim.
//!
//! This is deliberately a second reading of the files, independent of the corpus loader: a quote
//! passes only if it is a substring of the source once inline markup is removed (emphasis, code
//! ticks, link and image syntax, inline HTML, escapes, entities, footnote markers), with whitespace
//! runs read as one space and table pipes read as " | ". Block structure (list bullets, headings)
//! stays, so a quote cannot silently join two list items or a heading and a paragraph.

use crate::corpus::Corpus;
use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Each guide's source, normalized, by guide slug.
#[derive(Debug, Default)]
pub struct SourceTexts {
    by_guide: HashMap<String, String>,
}

impl SourceTexts {
    /// Reads every guide's file again. A guide whose file cannot be read has no source, and its
    /// quotes then fail the check (the eval reports them rather than trusting them).
    pub fn of(corpus: &Corpus) -> SourceTexts {
        let by_guide = corpus
            .guides
            .iter()
            .filter_map(|guide| {
                let text = std::fs::read_to_string(&guide.path).ok()?;
                Some((guide.meta.slug.clone(), plain_markdown(&text)))
            })
            .collect();
        SourceTexts { by_guide }
    }

    /// Whether `quote` is verbatim in the source of guide `guide`.
    pub fn is_verbatim(&self, guide: &str, quote: &str) -> bool {
        let wanted = normalize_spacing(quote);
        !wanted.is_empty()
            && self
                .by_guide
                .get(guide)
                .is_some_and(|source| source.contains(&wanted))
    }
}

/// Markdown source → its text with inline markup removed, spacing normalized.
pub fn plain_markdown(source: &str) -> String {
    static COMMENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<!--.*?-->").unwrap());
    static IMAGE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"!\[([^\]]*)\]\([^)]*\)").unwrap());
    static LINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)").unwrap());
    static REFERENCE_LINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[([^\]^][^\]]*)\]\[[^\]]*\]").unwrap());
    static FOOTNOTE_MARKER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[\^[^\]]+\]").unwrap());
    static AUTOLINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"<((?:https?|mailto):[^>\s]*)>").unwrap());
    // An HTML tag as CommonMark reads one: a name, then attributes ("<user, ad>" is not a tag).
    static TAG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"</?[A-Za-z][A-Za-z0-9-]*(?:\s+[A-Za-z_:][\w.:-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*\s*/?>"#,
        )
        .unwrap()
    });
    static STRONG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\*\*|__|~~)").unwrap());
    static STAR_EMPHASIS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(^|[^\w*\\])\*([^*\s](?:[^*]*[^*\s])?)\*($|[^\w*])").unwrap()
    });
    static UNDERSCORE_EMPHASIS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(^|[^\w])_([^_\s](?:[^_]*[^_\s])?)_($|[^\w])").unwrap());
    static ESCAPE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\\([!-/:-@\[-`{-~])").unwrap());
    let text = strip_front_matter(source);
    let text = COMMENT.replace_all(text, " ");
    let text = IMAGE.replace_all(&text, "$1");
    let text = LINK.replace_all(&text, "$1");
    let text = REFERENCE_LINK.replace_all(&text, "$1");
    let text = FOOTNOTE_MARKER.replace_all(&text, "");
    let text = AUTOLINK.replace_all(&text, "$1");
    static BREAKING_TAG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)</?(?:br|p|div|li|tr|td|th|table|hr|center|figure|figcaption)\b[^<>]*>")
            .unwrap()
    });
    let text = BREAKING_TAG.replace_all(&text, " ");
    let text = TAG.replace_all(&text, "");
    let text = STRONG.replace_all(&text, "");
    // Adjacent spans ("*a*-*b*") share a delimiter's neighbour: repeat until nothing changes.
    let mut text = text.into_owned();
    for _ in 0..4 {
        let next = STAR_EMPHASIS.replace_all(&text, "$1$2$3");
        let next = UNDERSCORE_EMPHASIS
            .replace_all(&next, "$1$2$3")
            .into_owned();
        if next == text {
            break;
        }
        text = next;
    }
    let text = text.replace('`', "");
    let text = ESCAPE.replace_all(&text, "$1");
    let text = decode_entities(&text);
    normalize_spacing(&text)
}

/// Whitespace runs as one space, table pipes as " | ", ends trimmed.
fn normalize_spacing(text: &str) -> String {
    let mut spaced = String::with_capacity(text.len());
    for word in text.split('|') {
        if !spaced.is_empty() || text.starts_with('|') {
            spaced.push_str(" | ");
        }
        spaced.push_str(word);
    }
    crate::corpus::collapse_whitespace(&spaced)
}

fn strip_front_matter(source: &str) -> &str {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    for fence in ["+++", "---"] {
        if let Some(rest) = source.strip_prefix(fence) {
            if let Some(end) = rest.find(&format!("\n{fence}")) {
                let after = &rest[end + 1 + fence.len()..];
                return after;
            }
        }
    }
    source
}

fn decode_entities(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_goes_and_block_structure_stays() {
        let source = "+++\ntitle = \"x\"\n+++\n# Title\n\n- **Bold** and *it* with [a link](http://x.y) and `code`\n- next <!-- hidden -->item\n";
        let plain = plain_markdown(source);
        assert!(plain.contains("Bold and it with a link and code"));
        assert!(plain.contains("- next item"));
        assert!(!plain.contains("hidden"));
        assert!(!plain.contains("title ="));
    }

    #[test]
    fn table_rows_match_with_normalized_pipes() {
        let plain = plain_markdown("| A | B |\n| --- | --- |\n|Google MLE| $1k–$2k |\n");
        assert!(plain.contains(&normalize_spacing("Google MLE | $1k–$2k")));
    }

    #[test]
    fn snake_case_keeps_its_underscores() {
        assert!(plain_markdown("use max_depth and _this_").contains("use max_depth and this"));
    }
}
