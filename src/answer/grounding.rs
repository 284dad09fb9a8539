//! Checks an LLM's answer sentence by sentence against the passages it was sent, and keeps only
//! what the guide supports.
//!
//! - A citation counts only if it names a sent passage and what it quotes is in that passage: its
//!   `cited_text` (or its block range) must be verbatim there. The shown quote is that text, never
//!   one we picked ourselves; when it spans several rows or items, the ones holding the sentence's
//!   figures. A bare `[n]` marker cites its whole passage: its quote is the passage's blocks that
//!   hold the sentence's figures and share a word with the sentence (a figure in an unrelated row
//!   supports nothing), or the block sharing most of its words.
//! - A sentence stating a figure (money, percentage, count, duration, level) must be covered by a
//!   surviving citation whose quoted text contains every figure it states; otherwise it is removed
//!   and the answer says so.
//! - An answer left with no cited sentence is rejected (the caller falls back to extractive).

use super::figures::figures;
use super::prompt::{Block, SentPassage};
use super::{Answer, AnswerMode, Citation};
use crate::corpus::sentences::split_sentences;
use crate::corpus::{collapse_whitespace, Corpus};
use crate::llm::{AnswerPiece, LlmCitation, LlmCompletion};
use crate::search::for_each_token;
use std::collections::HashSet;
use std::ops::Range;

/// Most quotes one citation shows for one sentence (a sentence stating figures from several rows
/// of a cited range shows those rows).
const MAX_QUOTES_PER_CITATION: usize = 3;

/// Turns a completion into a checked, cited answer, or `None` when no cited sentence survives.
/// `sent` are the passages numbered 1.. in the request; `query_terms` help pick the quote of a
/// `[n]` marker on a sentence without figures.
pub fn ground_completion(
    question: &str,
    completion: &LlmCompletion,
    sent: &[SentPassage],
    corpus: &Corpus,
    query_terms: &[String],
    mode: AnswerMode,
) -> Option<Answer> {
    let (plain, anchors) = plain_text(&completion.pieces);
    let sentences = sentences_of(&plain);
    let checker = Checker {
        sent,
        corpus,
        query_terms,
    };
    let resolved: Vec<Vec<Option<Resolved>>> = anchors
        .iter()
        .map(|anchor| {
            anchor
                .citations
                .iter()
                .map(|citation| checker.resolve(citation))
                .collect()
        })
        .collect();
    let dropped =
        resolved.iter().flatten().filter(|r| r.is_none()).count() + completion.unknown_citations;

    // Each sentence: kept or not, and the quotes it cites, tied to the anchor they came from.
    let mut verdicts: Vec<Verdict> = Vec::with_capacity(sentences.len());
    for sentence in &sentences {
        let text = &plain[sentence.range.clone()];
        let stated = figures(text);
        let mut quotes: Vec<(usize, Quote)> = Vec::new();
        for (index, anchor) in anchors.iter().enumerate() {
            if !anchor.covers(sentence) {
                continue;
            }
            for resolved in resolved[index].iter().flatten() {
                for quote in checker.quotes_for(resolved, text, &stated) {
                    if !quotes.iter().any(|(_, seen)| *seen == quote) {
                        quotes.push((index, quote));
                    }
                }
            }
        }
        let supported: HashSet<String> = quotes
            .iter()
            .flat_map(|(_, quote)| figures(&quote.text))
            .collect();
        let kept = stated.iter().all(|figure| supported.contains(figure));
        verdicts.push(Verdict {
            kept,
            quotes: if kept { quotes } else { Vec::new() },
        });
    }
    let removed = verdicts.iter().filter(|verdict| !verdict.kept).count();
    if !verdicts
        .iter()
        .any(|verdict| verdict.kept && !verdict.quotes.is_empty())
    {
        tracing::info!(
            sentences = sentences.len(),
            removed,
            dropped_citations = dropped,
            "LLM answer has no supported cited sentence"
        );
        return None;
    }

    // Number the quotes in order of appearance; one number per distinct quote of a passage.
    let mut citations: Vec<Citation> = Vec::new();
    let mut numbered: Vec<Vec<(usize, usize)>> = Vec::with_capacity(verdicts.len());
    for verdict in &verdicts {
        let mut marks = Vec::new();
        for (anchor, quote) in &verdict.quotes {
            let passage = &sent[quote.passage];
            let existing = citations
                .iter()
                .position(|c| c.passage_id == quote.passage_id && c.quote == quote.text);
            let n = match existing {
                Some(position) => position + 1,
                None => {
                    citations.push(Citation {
                        n: citations.len() + 1,
                        guide: passage.guide.clone(),
                        guide_title: passage.guide_title.clone(),
                        section_id: passage.section_id.clone(),
                        heading: passage.heading.clone(),
                        quote: quote.text.clone(),
                        passage_id: quote.passage_id.clone(),
                    });
                    citations.len()
                }
            };
            marks.push((*anchor, n));
        }
        numbered.push(marks);
    }
    let text = render(&plain, &sentences, &verdicts, &numbered, &anchors);
    if removed > 0 || dropped > 0 {
        tracing::info!(
            sentences = sentences.len(),
            removed,
            dropped_citations = dropped,
            "LLM answer trimmed to what its citations support"
        );
    }
    Some(Answer {
        question: question.to_string(),
        answer: text,
        citations,
        refused: false,
        mode,
        closest_sections: Vec::new(),
        note: (removed > 0).then(|| super::trimmed_note(removed)),
        latency_ms: 0.0,
        usage: Some(completion.usage),
        coverage: 0.0,
        fallback: None,
        trimmed_sentences: removed,
    })
}

/// Text the model tied to citations: a cited block's range, or a marker's position.
#[derive(Debug)]
struct Anchor {
    range: Range<usize>,
    /// A `[n]` marker: it cites for the sentence it ends.
    point: bool,
    citations: Vec<LlmCitation>,
}

impl Anchor {
    fn covers(&self, sentence: &Sentence) -> bool {
        if self.point {
            sentence.range.start < self.range.start && self.range.start <= sentence.extent_end
        } else {
            self.range.start < sentence.range.end && sentence.range.start < self.range.end
        }
    }

    /// Where this anchor's marker goes in `sentence`: at the end of the cited text, or the
    /// marker's own place, kept inside the sentence.
    fn marker_position(&self, sentence: &Sentence) -> usize {
        self.range
            .end
            .clamp(sentence.range.start, sentence.range.end)
    }
}

/// The answer without markers, and the anchors of its citations in it.
fn plain_text(pieces: &[AnswerPiece]) -> (String, Vec<Anchor>) {
    let mut plain = String::new();
    let mut anchors = Vec::new();
    for piece in pieces {
        match piece {
            AnswerPiece::Text(text) => plain.push_str(text),
            AnswerPiece::Cited { text, citations } => {
                let start = plain.len();
                plain.push_str(text);
                anchors.push(Anchor {
                    range: start..plain.len(),
                    point: false,
                    citations: citations.clone(),
                });
            }
            AnswerPiece::Marker(citations) => {
                // "costs $5 [1]." reads "costs $5." once the marker is out.
                let end = plain.trim_end_matches([' ', '\t']).len();
                plain.truncate(end);
                anchors.push(Anchor {
                    range: end..end,
                    point: true,
                    citations: citations.clone(),
                });
            }
        }
    }
    (plain, anchors)
}

/// One sentence of the answer: its trimmed byte range, and where the next one starts.
#[derive(Debug)]
struct Sentence {
    range: Range<usize>,
    extent_end: usize,
}

/// The answer's sentences, line by line (a bullet without a full stop is a sentence of its own).
fn sentences_of(plain: &str) -> Vec<Sentence> {
    let mut sentences: Vec<Sentence> = Vec::new();
    let mut line_start = 0;
    for line in plain.split('\n') {
        for sentence in split_sentences(line) {
            let start = line_start + (sentence.as_ptr() as usize - line.as_ptr() as usize);
            sentences.push(Sentence {
                range: start..start + sentence.len(),
                extent_end: plain.len(),
            });
        }
        line_start += line.len() + 1;
    }
    for index in 1..sentences.len() {
        sentences[index - 1].extent_end = sentences[index].range.start;
    }
    sentences
}

/// A citation that passed the checks: its sent passage and what it quotes (`None`: a `[n]`
/// marker, which cites the whole passage).
#[derive(Debug, Clone)]
struct Resolved {
    passage: usize,
    spans: Option<Vec<Block>>,
}

/// A verbatim quote of a sent passage, with the guide passage it is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Quote {
    passage: usize,
    passage_id: String,
    text: String,
}

/// What happened to one sentence.
#[derive(Debug)]
struct Verdict {
    kept: bool,
    /// The quotes supporting it, each with the index of the anchor that cited it.
    quotes: Vec<(usize, Quote)>,
}

struct Checker<'a> {
    sent: &'a [SentPassage],
    corpus: &'a Corpus,
    query_terms: &'a [String],
}

impl Checker<'_> {
    /// Checks a citation against the passage it names: `None` when the passage was not sent or
    /// its text (or block range) is not in that passage.
    fn resolve(&self, citation: &LlmCitation) -> Option<Resolved> {
        let index = citation.passage_number.checked_sub(1)?;
        let passage = self.sent.get(index)?;
        let spans = if let Some(cited) = &citation.cited_text {
            Some(locate(passage, cited)?)
        } else if let Some(range) = &citation.blocks {
            let blocks = passage
                .blocks
                .get(range.clone())
                .filter(|b| !b.is_empty())?;
            Some(merge_blocks(blocks))
        } else {
            None
        };
        if let Some(spans) = &spans {
            let verbatim = spans.iter().all(|span| {
                self.corpus
                    .passage_contains(&passage.line_passages[span.line], passage.block_text(span))
            });
            if !verbatim {
                return None;
            }
        }
        Some(Resolved {
            passage: index,
            spans,
        })
    }

    /// The quotes a resolved citation shows for a sentence stating `stated`. A citation of one
    /// span shows it. A citation of several (a range of rows, or a marker, which cites its whole
    /// passage) shows the fewest of them that hold the sentence's figures among those about what
    /// the sentence is about — a figure found in an unrelated row supports nothing — and, for a
    /// sentence without figures, the span closest to it.
    fn quotes_for(&self, resolved: &Resolved, sentence: &str, stated: &[String]) -> Vec<Quote> {
        let passage = &self.sent[resolved.passage];
        let spans: Vec<Block> = match &resolved.spans {
            Some(spans) if spans.len() == 1 => spans.clone(),
            Some(spans) => self.choose(passage, spans, sentence, stated),
            None => merge_blocks(&self.choose(passage, &passage.blocks, sentence, stated)),
        };
        spans
            .iter()
            .take(MAX_QUOTES_PER_CITATION)
            .map(|span| Quote {
                passage: resolved.passage,
                passage_id: passage.line_passages[span.line].clone(),
                text: passage.block_text(span).to_string(),
            })
            .filter(|quote| !quote.text.trim().is_empty())
            .collect()
    }

    /// Of `spans`, the fewest related to the sentence that hold its figures; when none does (or
    /// it states none), the one sharing most of its words (the first on ties).
    fn choose(
        &self,
        passage: &SentPassage,
        spans: &[Block],
        sentence: &str,
        stated: &[String],
    ) -> Vec<Block> {
        let words = self.words_of(sentence);
        let scored: Vec<(usize, &Block)> = spans
            .iter()
            .map(|span| (shared_words(passage.block_text(span), &words), span))
            .collect();
        let related: Vec<Block> = scored
            .iter()
            .filter(|(shared, _)| *shared > 0)
            .map(|(_, span)| (*span).clone())
            .collect();
        let covering = cover(passage, &related, stated);
        if !covering.is_empty() {
            return covering;
        }
        let mut best: Option<(usize, &Block)> = None;
        for &(shared, span) in &scored {
            if best.is_none_or(|(top, _)| shared > top) {
                best = Some((shared, span));
            }
        }
        best.map(|(_, span)| span.clone()).into_iter().collect()
    }

    /// The indexed words (not figures) of a sentence; the question's when the sentence has none
    /// ("That's $300k–$430k.").
    fn words_of(&self, sentence: &str) -> HashSet<String> {
        let mut words: HashSet<String> = HashSet::new();
        for_each_token(sentence, |token| {
            if is_word(token) {
                words.insert(token.to_string());
            }
        });
        if words.is_empty() {
            words.extend(self.query_terms.iter().filter(|t| is_word(t)).cloned());
        }
        words
    }
}

/// A token that is a word rather than a figure ("l4", "300k" are figures).
fn is_word(token: &str) -> bool {
    !token.chars().any(|c| c.is_ascii_digit())
}

/// How many distinct indexed words of `text` are in `words` (figures are never in `words`).
fn shared_words(text: &str, words: &HashSet<String>) -> usize {
    let mut shared: HashSet<String> = HashSet::new();
    for_each_token(text, |token| {
        if words.contains(token) {
            shared.insert(token.to_string());
        }
    });
    shared.len()
}

/// Where a provider's cited text sits in a passage: within one line, or as a run of whole blocks
/// (however the provider joined them). `None` when it is not in the passage.
fn locate(passage: &SentPassage, cited: &str) -> Option<Vec<Block>> {
    let wanted = collapse_whitespace(cited);
    if wanted.is_empty() {
        return None;
    }
    for (index, line) in passage.lines.iter().enumerate() {
        if let Some(start) = line.find(&wanted) {
            return Some(vec![Block {
                line: index,
                range: start..start + wanted.len(),
            }]);
        }
    }
    for first in 0..passage.blocks.len() {
        let mut rest = wanted.as_str();
        for (count, block) in passage.blocks[first..].iter().enumerate() {
            let text = collapse_whitespace(passage.block_text(block));
            let Some(after) = rest.strip_prefix(text.as_str()) else {
                break;
            };
            rest = after.trim_start();
            if rest.is_empty() {
                return Some(merge_blocks(&passage.blocks[first..=first + count]));
            }
        }
    }
    None
}

/// The fewest of `spans` that hold the most of `stated` (greedy: each next span adds the most
/// figures not yet held, the earliest on ties), in the passage's order; empty when none holds any.
fn cover(passage: &SentPassage, spans: &[Block], stated: &[String]) -> Vec<Block> {
    let held: Vec<Vec<&String>> = spans
        .iter()
        .map(|span| {
            let own = figures(passage.block_text(span));
            stated
                .iter()
                .filter(|figure| own.contains(figure))
                .collect()
        })
        .collect();
    let mut chosen: Vec<usize> = Vec::new();
    let mut covered: HashSet<&String> = HashSet::new();
    loop {
        let best = held
            .iter()
            .enumerate()
            .map(|(index, figures)| {
                let new = figures.iter().filter(|f| !covered.contains(*f)).count();
                (new, index)
            })
            .filter(|(new, _)| *new > 0)
            .min_by_key(|(new, index)| (std::cmp::Reverse(*new), *index));
        let Some((_, index)) = best else {
            break;
        };
        covered.extend(held[index].iter().copied());
        chosen.push(index);
    }
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|index| spans[index].clone())
        .collect()
}

/// Consecutive blocks of one line read as one span (still a slice of the line, so verbatim).
fn merge_blocks(blocks: &[Block]) -> Vec<Block> {
    let mut merged: Vec<Block> = Vec::new();
    for block in blocks {
        match merged.last_mut() {
            Some(last) if last.line == block.line && last.range.end <= block.range.start => {
                last.range.end = block.range.end;
            }
            _ => merged.push(block.clone()),
        }
    }
    merged
}

/// The kept sentences with their new markers, in the answer's own layout.
fn render(
    plain: &str,
    sentences: &[Sentence],
    verdicts: &[Verdict],
    numbered: &[Vec<(usize, usize)>],
    anchors: &[Anchor],
) -> String {
    let mut out = String::with_capacity(plain.len());
    for ((sentence, verdict), marks) in sentences.iter().zip(verdicts).zip(numbered) {
        let gap = &plain[sentence.range.end..sentence.extent_end];
        if !verdict.kept {
            // Keep the line break a removed sentence ended, once.
            if let Some(newline) = gap.find('\n') {
                if !out.is_empty() && !out.ends_with('\n') {
                    let end = out.trim_end_matches([' ', '\t']).len();
                    out.truncate(end);
                    out.push_str(&gap[newline..]);
                }
            }
            continue;
        }
        // Marker positions in this sentence, each with its numbers in order.
        let mut inserts: Vec<(usize, Vec<usize>)> = Vec::new();
        for &(anchor, n) in marks {
            let mut at = anchors[anchor].marker_position(sentence);
            at = sentence.range.start + plain[sentence.range.start..at].trim_end().len();
            match inserts.iter_mut().find(|(position, _)| *position == at) {
                Some((_, numbers)) if numbers.contains(&n) => {}
                Some((_, numbers)) => numbers.push(n),
                None => inserts.push((at, vec![n])),
            }
        }
        inserts.sort_by_key(|(position, _)| *position);
        let mut from = sentence.range.start;
        for (at, numbers) in inserts {
            out.push_str(&plain[from..at]);
            out.push(' ');
            for n in numbers {
                out.push_str(&format!("[{n}]"));
            }
            from = at;
        }
        out.push_str(&plain[from..sentence.range.end]);
        out.push_str(gap);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence_texts(plain: &str) -> Vec<&str> {
        sentences_of(plain)
            .iter()
            .map(|sentence| &plain[sentence.range.clone()])
            .collect()
    }

    #[test]
    fn markers_come_out_and_anchor_their_sentence() {
        let pieces = vec![
            AnswerPiece::Text("Google pays $5 ".into()),
            AnswerPiece::Marker(vec![LlmCitation::marker(1)]),
            AnswerPiece::Text(". Meta pays more. ".into()),
            AnswerPiece::Marker(vec![LlmCitation::marker(2)]),
            AnswerPiece::Text("\n- Netflix: $7".into()),
        ];
        let (plain, anchors) = plain_text(&pieces);
        assert_eq!(plain, "Google pays $5. Meta pays more.\n- Netflix: $7");
        assert_eq!(
            sentence_texts(&plain),
            vec!["Google pays $5.", "Meta pays more.", "- Netflix: $7"]
        );
        let sentences = sentences_of(&plain);
        let covered: Vec<Vec<bool>> = anchors
            .iter()
            .map(|anchor| sentences.iter().map(|s| anchor.covers(s)).collect())
            .collect();
        assert_eq!(
            covered,
            vec![vec![true, false, false], vec![false, true, false]]
        );
    }

    #[test]
    fn cited_blocks_cover_the_sentences_they_overlap() {
        let pieces = vec![
            AnswerPiece::Text("In short, ".into()),
            AnswerPiece::Cited {
                text: "base is $1".into(),
                citations: vec![LlmCitation::marker(1)],
            },
            AnswerPiece::Text(". Other words.".into()),
        ];
        let (plain, anchors) = plain_text(&pieces);
        let sentences = sentences_of(&plain);
        assert!(anchors[0].covers(&sentences[0]));
        assert!(!anchors[0].covers(&sentences[1]));
        assert_eq!(
            anchors[0].marker_position(&sentences[0]),
            "In short, base is $1".len()
        );
    }

    #[test]
    fn removed_sentences_leave_the_layout_intact() {
        let plain = "Intro: $1 a.\n- Two $2.\n- Three $3.\nEnd $4. Tail $5.";
        let sentences = sentences_of(plain);
        let kept = [true, false, true, true, false];
        let verdicts: Vec<Verdict> = kept
            .iter()
            .map(|&kept| Verdict {
                kept,
                quotes: Vec::new(),
            })
            .collect();
        let numbered = vec![Vec::new(); verdicts.len()];
        assert_eq!(
            render(plain, &sentences, &verdicts, &numbered, &[]),
            "Intro: $1 a.\n- Three $3.\nEnd $4."
        );
    }
}
