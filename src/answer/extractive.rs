//! The embedded default: an answer made of the guide's own most relevant sentences, each cited.

use super::sentences::split_sentences;
use super::{Answer, AnswerMode, Citation, SectionRef, ANSWER_PASSAGES};
use crate::corpus::{Corpus, PassageKind};
use crate::search::{analyze, Hit, SearchResults};
use std::collections::HashSet;

/// Longest extractive answer, in words; the best sentence is kept even when it alone is longer.
const MAX_ANSWER_WORDS: usize = 120;
/// Most sentences in an extractive answer.
const MAX_SENTENCES: usize = 3;
/// Sentence length (in words) at which a sentence's score is halved.
const LENGTH_SCALE_WORDS: f32 = 25.0;
/// How fast a passage's rank lowers its sentences' scores.
const RANK_DECAY: f32 = 0.35;
/// A further sentence joins the answer only when it scores at least this share of the best one.
const MIN_SHARE_OF_BEST: f32 = 0.5;
/// A "sentence" this short is a label ("Scope ownership.") and is read with the next one.
const LABEL_MAX_WORDS: usize = 3;

/// A sentence that could go into the answer, with the verbatim quote that supports it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// What the reader sees (a table row is rendered as a sentence).
    pub shown: String,
    /// Verbatim text of the passage.
    pub quote: String,
    pub hit_index: usize,
    pub position: usize,
    pub score: f32,
}

/// Builds the extractive answer for `results` (or a refusal when nothing relevant was found).
pub fn extractive_answer(question: &str, results: &SearchResults, corpus: &Corpus) -> Answer {
    if !results.relevant || results.hits.is_empty() {
        return refusal(question, results);
    }
    let terms: HashSet<&str> = results.query_terms.iter().map(String::as_str).collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    for (hit_index, hit) in results.hits.iter().take(ANSWER_PASSAGES).enumerate() {
        candidates.extend(candidates_of(hit, hit_index, &terms));
    }
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.hit_index.cmp(&b.hit_index))
            .then(a.position.cmp(&b.position))
    });

    let mut chosen: Vec<&Candidate> = Vec::new();
    let mut words = 0;
    for candidate in &candidates {
        if chosen.len() >= MAX_SENTENCES {
            break;
        }
        if let Some(best) = chosen.first() {
            if candidate.score <= 0.0 || candidate.score < best.score * MIN_SHARE_OF_BEST {
                break;
            }
        }
        if chosen
            .iter()
            .any(|c| c.quote == candidate.quote || c.shown == candidate.shown)
        {
            continue;
        }
        let candidate_words = candidate.shown.split_whitespace().count();
        if !chosen.is_empty() && words + candidate_words > MAX_ANSWER_WORDS {
            continue;
        }
        if !corpus.contains_quote(&candidate.quote) {
            continue;
        }
        words += candidate_words;
        chosen.push(candidate);
    }
    if chosen.is_empty() {
        return refusal(question, results);
    }

    let mut citations: Vec<Citation> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for candidate in chosen {
        let hit = &results.hits[candidate.hit_index];
        let n = citations.len() + 1;
        citations.push(Citation {
            n,
            guide: hit.guide.clone(),
            guide_title: hit.guide_title.clone(),
            section_id: hit.section_id.clone(),
            heading: hit.heading.clone(),
            quote: candidate.quote.clone(),
            passage_id: hit.passage_id.clone(),
        });
        parts.push(format!("{} [{n}]", candidate.shown));
    }
    Answer {
        question: question.to_string(),
        answer: parts.join(" "),
        citations,
        refused: false,
        mode: AnswerMode::Extractive,
        closest_sections: Vec::new(),
        note: None,
        latency_ms: 0.0,
        usage: None,
        coverage: results.coverage,
        fallback: None,
    }
}

/// The answer when the guides do not cover the question: say so and point at the closest sections.
pub(crate) fn refusal(question: &str, results: &SearchResults) -> Answer {
    let closest = closest_sections(&results.hits);
    let mut text = if results.hits.is_empty() && results.notice.is_some() {
        "I couldn't find anything to search for in that message. Try a question like \"What's the total comp for a Google L4 MLE?\"".to_string()
    } else {
        "The guide doesn't cover that.".to_string()
    };
    if !closest.is_empty() {
        let names: Vec<String> = closest
            .iter()
            .map(|s| format!("\"{}\"", s.heading))
            .collect();
        text.push_str(&format!(
            " The closest sections are {}.",
            join_names(&names)
        ));
    }
    Answer {
        question: question.to_string(),
        answer: text,
        citations: Vec::new(),
        refused: true,
        mode: AnswerMode::Extractive,
        closest_sections: closest,
        note: None,
        latency_ms: 0.0,
        usage: None,
        coverage: results.coverage,
        fallback: None,
    }
}

fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

fn closest_sections(hits: &[Hit]) -> Vec<SectionRef> {
    let mut sections: Vec<SectionRef> = Vec::new();
    for hit in hits {
        if sections.len() >= 3 {
            break;
        }
        if !sections
            .iter()
            .any(|s| s.section_id == hit.section_id && s.guide == hit.guide)
        {
            sections.push(SectionRef {
                guide: hit.guide.clone(),
                section_id: hit.section_id.clone(),
                heading: hit.heading.clone(),
            });
        }
    }
    sections
}

/// The sentences (or table rows) of one hit, scored by how many of the question's terms they carry.
pub(crate) fn candidates_of(hit: &Hit, hit_index: usize, terms: &HashSet<&str>) -> Vec<Candidate> {
    // Sentences of better-ranked passages win ties and near-ties.
    let rank_factor = 1.0 / (1.0 + RANK_DECAY * hit_index as f32);
    let score_of = |text: &str| -> f32 {
        let tokens: HashSet<String> = analyze(text).into_iter().collect();
        let matched = tokens
            .iter()
            .filter(|token| terms.contains(token.as_str()))
            .count();
        if matched == 0 {
            0.0
        } else {
            // Prefer the short sentence that carries the question's words over a long one that
            // merely mentions more of them.
            let words = text.split_whitespace().count() as f32;
            matched as f32 * rank_factor / (1.0 + words / LENGTH_SCALE_WORDS)
        }
    };
    match hit.kind {
        PassageKind::TableRow => {
            // "Company: Google MLE; Level: L4; ..." reads as "Google MLE — Level L4, ...".
            let context_score = hit.context.as_deref().map(score_of).unwrap_or(0.0) * 0.25;
            vec![Candidate {
                shown: render_row(&hit.text),
                quote: hit.text.clone(),
                hit_index,
                position: 0,
                score: score_of(&hit.text) + context_score,
            }]
        }
        PassageKind::Table => {
            let mut lines = hit.text.lines();
            let header: Vec<&str> = lines.next().unwrap_or_default().split(" | ").collect();
            lines
                .enumerate()
                .map(|(position, line)| {
                    let cells: Vec<&str> = line.split(" | ").collect();
                    let labelled = header
                        .iter()
                        .zip(&cells)
                        .map(|(name, value)| format!("{name}: {value}"))
                        .collect::<Vec<_>>()
                        .join("; ");
                    Candidate {
                        shown: render_row(&labelled),
                        quote: line.to_string(),
                        hit_index,
                        position,
                        // Whole tables lose to the row passages that say the same thing.
                        score: score_of(&labelled) * 0.9,
                    }
                })
                .collect()
        }
        _ => {
            let sentences = split_sentences(&hit.text);
            let mut candidates = Vec::with_capacity(sentences.len());
            let mut position = 0;
            while position < sentences.len() {
                let sentence = sentences[position];
                let is_label = sentence.split_whitespace().count() <= LABEL_MAX_WORDS
                    && sentence.ends_with('.')
                    && position + 1 < sentences.len();
                let quote = if is_label {
                    span(&hit.text, sentence, sentences[position + 1])
                } else {
                    sentence.to_string()
                };
                candidates.push(Candidate {
                    score: score_of(&quote),
                    shown: quote.clone(),
                    quote,
                    hit_index,
                    position,
                });
                position += if is_label { 2 } else { 1 };
            }
            candidates
        }
    }
}

/// The text of `whole` from the start of `first` to the end of `last` (both slices of `whole`).
fn span(whole: &str, first: &str, last: &str) -> String {
    let base = whole.as_ptr() as usize;
    let start = (first.as_ptr() as usize).saturating_sub(base);
    let end = (last.as_ptr() as usize + last.len()).saturating_sub(base);
    whole
        .get(start..end)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{first} {last}"))
}

/// "Company: Google MLE; Level: L4; Base: $1; Total comp: $2" → "Google MLE — Level L4, Base $1, Total comp $2".
fn render_row(labelled: &str) -> String {
    let cells: Vec<(&str, &str)> = labelled
        .split("; ")
        .map(|cell| cell.split_once(": ").unwrap_or(("", cell)))
        .collect();
    match cells.split_first() {
        Some(((_, first), rest)) if !rest.is_empty() => {
            let details: Vec<String> = rest
                .iter()
                .map(|(name, value)| format!("{} {value}", name.trim()))
                .collect();
            format!("{} — {}.", first.trim(), details.join(", "))
        }
        _ => labelled.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_as_sentences() {
        assert_eq!(
            render_row(
                "Company: Google MLE; Level: L4; Base: $170k–$220k; Total comp: $300k–$430k"
            ),
            "Google MLE — Level L4, Base $170k–$220k, Total comp $300k–$430k."
        );
    }

    #[test]
    fn spans_are_verbatim() {
        let text = "Scope ownership. You're given a problem.";
        let sentences = split_sentences(text);
        assert_eq!(span(text, sentences[0], sentences[1]), text);
    }

    #[test]
    fn names_join_in_english() {
        let names = ["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(join_names(&names), "a, b, and c");
    }
}
