//! The embedded default: an answer made of the guides' own most relevant sentences, list items and
//! table rows, each cited with a quote that is verbatim in the guide.
//!
//! How an answer is put together, in order:
//! - the best passage answers a question the guide itself asks (a question heading, or a bold
//!   question line under a heading): its first sentence, the guide's direct answer, leads;
//! - the question asks for a list and the best passage is part of one: the list's items;
//! - otherwise: the sentences that carry the most of the question's weighted ideas, short ones
//!   first, from the best-ranked passages.
//!
//! A 1–3 word label ("Scope ownership.") is read with the sentence after it and never stands alone.

use super::{Answer, AnswerMode, Citation, SectionRef, ANSWER_PASSAGES};
use crate::corpus::sentences::split_sentences;
use crate::corpus::{Corpus, Passage, PassageKind};
use crate::search::{analyze, Hit, SearchResults};
use std::collections::HashMap;

/// Longest extractive answer, in words; the first unit is kept even when it alone is longer.
const MAX_ANSWER_WORDS: usize = 130;
/// Most units (sentences, items, rows) in an answer made of the best-scoring sentences.
const MAX_SENTENCES: usize = 3;
/// Most items in an answer that lists a list.
const MAX_LIST_ITEMS: usize = 8;
/// Sentence length (in words) at which a sentence's score is halved.
const LENGTH_SCALE_WORDS: f32 = 25.0;
/// How fast a passage's rank lowers its sentences' scores.
const RANK_DECAY: f32 = 0.35;
/// A further sentence joins the answer only when it scores at least this share of the best one.
const MIN_SHARE_OF_BEST: f32 = 0.5;
/// A "sentence" this short is a label ("Scope ownership.") and is read with the next one.
const LABEL_MAX_WORDS: usize = 3;
/// Words of a long list item shown when a list is answered item by item.
const LIST_ITEM_WORDS: usize = 30;

/// A piece of a passage that can go into an answer, with the verbatim quote that supports it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// What the reader sees (a table row is read with its column names).
    pub shown: String,
    /// Verbatim text of the guide.
    pub quote: String,
    pub hit_index: usize,
    pub position: usize,
    pub score: f32,
}

/// Builds the extractive answer for `results` (or a refusal when nothing relevant was found).
pub fn extractive_answer(question: &str, results: &SearchResults, corpus: &Corpus) -> Answer {
    if !results.relevant || results.hits.is_empty() {
        return refusal(question, results, corpus.guides.len());
    }
    let weights: HashMap<&str, f32> = results
        .term_weights
        .iter()
        .map(|(token, weight)| (token.as_str(), *weight))
        .collect();
    let hits = &results.hits[..results.hits.len().min(ANSWER_PASSAGES)];
    let chosen = direct_answer(hits, corpus, &weights)
        .or_else(|| list_answer(question, hits, corpus, &weights))
        .unwrap_or_else(|| best_sentences(hits, &weights));
    let chosen: Vec<Candidate> = chosen
        .into_iter()
        .filter(|candidate| corpus.contains_quote(&candidate.quote))
        .collect();
    if chosen.is_empty() {
        return refusal(question, results, corpus.guides.len());
    }

    // One citation per passage; its quote is the first unit taken from it.
    let mut citations: Vec<Citation> = Vec::new();
    let mut cited_hits: Vec<usize> = Vec::new();
    let mut answer = String::new();
    for candidate in &chosen {
        let n = match cited_hits.iter().position(|&hit| hit == candidate.hit_index) {
            Some(position) => position + 1,
            None => {
                let hit = &hits[candidate.hit_index];
                cited_hits.push(candidate.hit_index);
                citations.push(Citation {
                    n: citations.len() + 1,
                    guide: hit.guide.clone(),
                    guide_title: hit.guide_title.clone(),
                    section_id: hit.section_id.clone(),
                    heading: hit.heading.clone(),
                    quote: candidate.quote.clone(),
                    passage_id: hit.passage_id.clone(),
                });
                citations.len()
            }
        };
        if !answer.is_empty() {
            answer.push(' ');
        }
        answer.push_str(&candidate.shown);
        // A marker after the last unit taken from a passage in a row.
        let next_same = chosen
            .iter()
            .skip_while(|other| !std::ptr::eq(*other, candidate))
            .nth(1)
            .is_some_and(|next| next.hit_index == candidate.hit_index);
        if !next_same {
            answer.push_str(&format!(" [{n}]"));
        }
    }
    Answer {
        question: question.to_string(),
        answer,
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

/// When the best passage is the guide's own answer to a question it asks (a question heading or a
/// bold question line), its first sentence is the direct answer ("Yes at most large tech
/// companies.") and leads, followed by the passage's best other sentences.
fn direct_answer(
    hits: &[Hit],
    corpus: &Corpus,
    weights: &HashMap<&str, f32>,
) -> Option<Vec<Candidate>> {
    let top = hits.first()?;
    let asks = top
        .subheading
        .as_deref()
        .is_some_and(|question| question.contains('?'))
        || top.heading.trim_end().ends_with('?');
    if !asks || !is_first_under_question(top, corpus) || top.kind != PassageKind::Paragraph {
        return None;
    }
    let mut units = units_of(top, 0, weights);
    if units.is_empty() {
        return None;
    }
    let lead = units.remove(0);
    let mut chosen = vec![lead];
    units.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.position.cmp(&b.position)));
    let mut words = word_count(&chosen[0].shown);
    for unit in units {
        if chosen.len() >= MAX_SENTENCES || unit.score <= 0.0 {
            break;
        }
        let unit_words = word_count(&unit.shown);
        if words + unit_words > MAX_ANSWER_WORDS {
            continue;
        }
        words += unit_words;
        chosen.push(unit);
    }
    // The guide's order reads best.
    chosen[1..].sort_by_key(|unit| unit.position);
    Some(chosen)
}

/// Whether a passage is the first one under its question (heading or bold line): the guide's
/// direct answer sits there.
fn is_first_under_question(hit: &Hit, corpus: &Corpus) -> bool {
    let Some(guide) = corpus.guide(&hit.guide) else {
        return false;
    };
    let mut previous: Option<&Passage> = None;
    for passage in guide.passages_of(&hit.section_id) {
        if passage.id == hit.passage_id {
            return match (&hit.subheading, previous) {
                (_, None) => true,
                (Some(subheading), Some(previous)) => {
                    previous.subheading.as_ref() != Some(subheading)
                }
                (None, Some(_)) => false,
            };
        }
        previous = Some(passage);
    }
    false
}

/// Words that make a question ask for a list of things.
const LIST_CUES: &[&str] = &[
    "list", "steps", "step", "types", "kinds", "ways", "examples", "methods", "techniques",
    "components", "parts", "stages", "phases", "criteria", "rubric", "graded", "grading", "grade",
    "metrics", "options", "approaches", "signals", "things", "topics", "rounds", "modules",
    "patterns", "which", "main", "key", "common", "what are", "what do", "name",
];

/// Whether the question asks for several things rather than one fact.
fn asks_for_list(question: &str) -> bool {
    let lowered = question.to_lowercase();
    let words: Vec<&str> = lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    LIST_CUES.iter().any(|cue| {
        if cue.contains(' ') {
            lowered.contains(cue)
        } else {
            words.contains(cue)
        }
    })
}

/// When the question asks for a list and the best passage is part of one (or introduces one),
/// the answer is the list: its lead-in, then its items (long items by their first sentence).
fn list_answer(
    question: &str,
    hits: &[Hit],
    corpus: &Corpus,
    weights: &HashMap<&str, f32>,
) -> Option<Vec<Candidate>> {
    if !asks_for_list(question) {
        return None;
    }
    let top = hits.first()?;
    let guide = corpus.guide(&top.guide)?;
    let section: Vec<&Passage> = guide.passages_of(&top.section_id).collect();
    let position = section.iter().position(|passage| passage.id == top.passage_id)?;
    // The list's passages: the top one if it is a list item, or the one right after a lead-in.
    let (first, lead_in) = match top.kind {
        PassageKind::ListItem => {
            let context = section[position].context.clone();
            let mut first = position;
            while first > 0
                && section[first - 1].kind == PassageKind::ListItem
                && section[first - 1].context == context
            {
                first -= 1;
            }
            (first, context)
        }
        PassageKind::Paragraph if top.text.trim_end().ends_with(':') => {
            let next = section.get(position + 1)?;
            if next.kind != PassageKind::ListItem {
                return None;
            }
            (position + 1, Some(top.text.clone()))
        }
        _ => return None,
    };
    let mut items: Vec<&Passage> = Vec::new();
    for passage in &section[first..] {
        if passage.kind != PassageKind::ListItem || passage.context != section[first].context {
            break;
        }
        items.push(passage);
    }
    // A single item with children is a list of its own: its children are the items.
    let lines: Vec<(&Passage, &str)> = items
        .iter()
        .flat_map(|passage| passage.text.lines().map(move |line| (*passage, line)))
        .collect();
    if lines.len() < 2 {
        return None;
    }
    let mut chosen = Vec::new();
    let mut words = 0;
    if let Some(lead_in) = lead_in.filter(|lead_in| lead_in.trim_end().ends_with(':')) {
        if let Some(lead_passage) = section[..first]
            .iter()
            .rev()
            .find(|passage| passage.text == lead_in)
        {
            let hit_index = hits
                .iter()
                .position(|hit| hit.passage_id == lead_passage.id);
            words += word_count(&lead_in);
            chosen.push(Candidate {
                shown: lead_in.clone(),
                quote: lead_in,
                hit_index: hit_index.unwrap_or(0),
                position: 0,
                score: 1.0,
            });
        }
    }
    for (position, (passage, line)) in lines.into_iter().enumerate() {
        if chosen.len() > MAX_LIST_ITEMS {
            break;
        }
        let shown = first_sentences(line, LIST_ITEM_WORDS);
        let shown_words = word_count(&shown);
        if !chosen.is_empty() && words + shown_words > MAX_ANSWER_WORDS {
            break;
        }
        words += shown_words;
        let hit_index = hits
            .iter()
            .position(|hit| hit.passage_id == passage.id);
        chosen.push(Candidate {
            shown: shown.clone(),
            quote: shown,
            hit_index: hit_index.unwrap_or(usize::MAX),
            position: position + 1,
            score: score_text(line, weights, 1.0),
        });
    }
    // Items from passages that were not among the hits are cited through the top hit's list: the
    // citation must name a hit, so they take the first hit's number only when they share its
    // section (they always do: the list is the top hit's).
    for candidate in &mut chosen {
        if candidate.hit_index == usize::MAX {
            candidate.hit_index = 0;
        }
    }
    if chosen.len() < 2 {
        return None;
    }
    Some(chosen)
}

/// The best-scoring sentences of the best passages, at most three and 130 words.
fn best_sentences(hits: &[Hit], weights: &HashMap<&str, f32>) -> Vec<Candidate> {
    let mut candidates: Vec<Candidate> = hits
        .iter()
        .enumerate()
        .flat_map(|(index, hit)| units_of(hit, index, weights))
        .collect();
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.hit_index.cmp(&b.hit_index))
            .then(a.position.cmp(&b.position))
    });
    let mut chosen: Vec<Candidate> = Vec::new();
    let mut words = 0;
    for candidate in candidates {
        if chosen.len() >= MAX_SENTENCES {
            break;
        }
        if let Some(best) = chosen.first() {
            if candidate.score <= 0.0 || candidate.score < best.score * MIN_SHARE_OF_BEST {
                break;
            }
        }
        if word_count(&candidate.shown) <= LABEL_MAX_WORDS {
            continue;
        }
        if chosen
            .iter()
            .any(|c| c.quote == candidate.quote || c.shown == candidate.shown)
        {
            continue;
        }
        let candidate_words = word_count(&candidate.shown);
        if !chosen.is_empty() && words + candidate_words > MAX_ANSWER_WORDS {
            continue;
        }
        words += candidate_words;
        chosen.push(candidate);
    }
    chosen
}

/// The answer when the guides do not cover the question: say so and point at the closest sections.
pub(crate) fn refusal(question: &str, results: &SearchResults, guides: usize) -> Answer {
    let closest = closest_sections(&results.hits);
    let mut text = if results.hits.is_empty() && results.notice.is_some() {
        "I couldn't find anything to search for in that message. Try a question like \"What's the total comp for a Google L4 MLE?\"".to_string()
    } else if guides > 1 {
        "The guides don't cover that.".to_string()
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

/// How well `text` carries the question's ideas: the summed weight of the ideas it matches,
/// lowered for long text (the short sentence that carries the question's words beats a long one
/// that merely mentions more of them) and by the passage's rank.
fn score_text(text: &str, weights: &HashMap<&str, f32>, rank_factor: f32) -> f32 {
    let mut tokens = analyze(text);
    tokens.sort_unstable();
    tokens.dedup();
    let matched: f32 = tokens
        .iter()
        .filter_map(|token| weights.get(token.as_str()))
        .sum();
    if matched <= 0.0 {
        return 0.0;
    }
    let words = word_count(text) as f32;
    matched * rank_factor / (1.0 + words / LENGTH_SCALE_WORDS)
}

/// The units of one hit, scored: sentences of prose and list items (a short label joined to the
/// sentence after it), or table rows read with their column names.
pub(crate) fn units_of(
    hit: &Hit,
    hit_index: usize,
    weights: &HashMap<&str, f32>,
) -> Vec<Candidate> {
    // Sentences of better-ranked passages win ties and near-ties.
    let rank_factor = 1.0 / (1.0 + RANK_DECAY * hit_index as f32);
    let header = hit
        .context
        .as_deref()
        .and_then(|context| context.lines().last())
        .map(|line| line.split(" | ").collect::<Vec<_>>());
    match hit.kind {
        PassageKind::TableRow => {
            let shown = render_row(header.as_deref(), &hit.text);
            vec![Candidate {
                score: score_text(&shown, weights, rank_factor),
                shown,
                quote: hit.text.clone(),
                hit_index,
                position: 0,
            }]
        }
        PassageKind::Table => {
            let mut lines = hit.text.lines();
            let header: Vec<&str> = lines.next().unwrap_or_default().split(" | ").collect();
            lines
                .enumerate()
                .map(|(position, line)| {
                    let shown = render_row(Some(&header), line);
                    Candidate {
                        // Whole tables lose to the row passages that say the same thing.
                        score: score_text(&shown, weights, rank_factor) * 0.9,
                        shown,
                        quote: line.to_string(),
                        hit_index,
                        position,
                    }
                })
                .collect()
        }
        PassageKind::Code => Vec::new(),
        PassageKind::Paragraph | PassageKind::ListItem => {
            let mut candidates = Vec::new();
            let mut position = 0;
            for line in hit.text.lines() {
                let sentences = split_sentences(line);
                let mut index = 0;
                while index < sentences.len() {
                    let sentence = sentences[index];
                    let is_label = word_count(sentence) <= LABEL_MAX_WORDS
                        && index + 1 < sentences.len();
                    let quote = if is_label {
                        span(line, sentence, sentences[index + 1])
                    } else {
                        sentence.to_string()
                    };
                    candidates.push(Candidate {
                        score: score_text(&quote, weights, rank_factor),
                        shown: quote.clone(),
                        quote,
                        hit_index,
                        position,
                    });
                    position += 1;
                    index += if is_label { 2 } else { 1 };
                }
            }
            candidates
        }
    }
}

/// The first sentences of `text` up to about `limit` words (at least the first sentence, with a
/// label joined to the one after it), verbatim.
fn first_sentences(text: &str, limit: usize) -> String {
    let sentences = split_sentences(text);
    let Some(first) = sentences.first() else {
        return text.to_string();
    };
    let mut last = *first;
    let mut words = word_count(first);
    for sentence in &sentences[1..] {
        let sentence_words = word_count(sentence);
        if words > LABEL_MAX_WORDS && words + sentence_words > limit {
            break;
        }
        words += sentence_words;
        last = sentence;
    }
    span(text, first, last)
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
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

/// A table row read as a sentence: "Google MLE — Level L4, Base $170k–$220k, Total comp
/// $300k–$430k." with the header's names, or the row's cells as written without a header.
fn render_row(header: Option<&[&str]>, row: &str) -> String {
    let cells: Vec<&str> = row.split(" | ").collect();
    match (header, cells.split_first()) {
        (Some(header), Some((first, rest)))
            if !rest.is_empty() && header.len() == cells.len() && header.iter().any(|h| !h.is_empty()) =>
        {
            let details: Vec<String> = header[1..]
                .iter()
                .zip(rest)
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| {
                    if name.is_empty() {
                        value.to_string()
                    } else {
                        format!("{} {value}", name.trim())
                    }
                })
                .collect();
            format!("{} — {}.", first.trim(), details.join(", "))
        }
        _ => row.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_as_sentences() {
        assert_eq!(
            render_row(
                Some(&["Company", "Level", "Base", "Total comp"]),
                "Google MLE | L4 | $170k–$220k | $300k–$430k"
            ),
            "Google MLE — Level L4, Base $170k–$220k, Total comp $300k–$430k."
        );
        assert_eq!(render_row(None, "Step 1 | Problem"), "Step 1 | Problem");
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

    #[test]
    fn list_questions_are_recognized() {
        assert!(asks_for_list("what are the steps of ML system design"));
        assert!(asks_for_list("which metrics should i track"));
        assert!(!asks_for_list("google l4 tc?"));
    }
}
