//! The embedded default: an answer made of the guides' own most relevant sentences, list items and
//! table rows, each cited with a quote that is verbatim in the guide.
//!
//! How an answer is put together, in order:
//! - the best passage answers a question the guide itself asks (a question heading, or a bold
//!   question line under a heading): the guide's answer is read from its start, so its direct
//!   answer ("Yes at most large tech companies.") leads;
//! - the question asks for a list and the best passage is part of one: the list's items;
//! - otherwise: the best sentence in its place (with the sentences after it in the same passage,
//!   where figures usually follow), and the best sentence of another passage if it scores well.
//!
//! A 1–3 word label ("Scope ownership.") is read with the sentence after it and never stands alone.
//! A lead-in ending in ':' is read with the list it introduces. A sentence that asks a question
//! (a guide's list of interview questions) scores a fifth, unless the user asks which questions
//! come up: it echoes the user's words without answering them.

use super::{Answer, AnswerMode, Citation, SectionRef, ANSWER_PASSAGES};
use crate::corpus::sentences::split_sentences;
use crate::corpus::{Corpus, Passage, PassageKind};
use crate::search::{for_each_guide_token, Hit, SearchResults};
use std::collections::HashMap;

/// Longest extractive answer, in words; the first unit is kept even when it alone is longer.
const MAX_ANSWER_WORDS: usize = 160;
/// Words read from the best sentence on, in its passage.
const WINDOW_WORDS: usize = 75;
/// Words of the guide's own answer read when the guide asks the question.
const DIRECT_ANSWER_WORDS: usize = 150;
/// Most items in an answer that lists a list.
const MAX_LIST_ITEMS: usize = 8;
/// Sentence length (in words) at which a sentence's score is halved.
const LENGTH_SCALE_WORDS: f32 = 25.0;
/// How fast a passage's rank lowers its sentences' scores.
const RANK_DECAY: f32 = 0.35;
/// Another passage's sentence joins the answer only when it scores at least this share of the best.
const MIN_SHARE_OF_BEST: f32 = 0.3;
/// Most sentences of other passages after the best one's window (answers often need a fact that
/// sits in a second passage: a table row beside the sentence that names the topic).
const OTHER_PASSAGE_SENTENCES: usize = 2;
/// A "sentence" this short is a label ("Scope ownership.") and is read with the next one.
const LABEL_MAX_WORDS: usize = 3;
/// A sentence that asks a question scores this share: the guide's own question lists ("What is
/// the KV cache?") echo the user's words but answer nothing.
const QUESTION_UNIT_FACTOR: f32 = 0.2;
/// Words a list item is read on to reach the sentence that carries the question.
const ITEM_READ_ON_WORDS: usize = 60;
/// Words of a long list item shown when a list is answered item by item.
const LIST_ITEM_WORDS: usize = 30;

/// What a unit of a passage is scored with: the question's term weights, and the share a sentence
/// that itself asks a question keeps.
pub(crate) struct UnitWeights<'a> {
    terms: HashMap<&'a str, f32>,
    /// [`QUESTION_UNIT_FACTOR`], or 1 when the user asks which questions to expect.
    question_factor: f32,
}

/// A passage an answer may quote: a search hit or a neighbour of one in the guide.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    passage_id: &'a str,
    guide: &'a str,
    guide_title: &'a str,
    section_id: &'a str,
    heading: &'a str,
    kind: PassageKind,
    text: &'a str,
    context: Option<&'a str>,
    /// Rank of the hit it is or belongs to, from 0: lower ranks' sentences win ties.
    rank: usize,
}

impl<'a> Source<'a> {
    pub(crate) fn of_hit(hit: &'a Hit, rank: usize) -> Source<'a> {
        Source {
            passage_id: &hit.passage_id,
            guide: &hit.guide,
            guide_title: &hit.guide_title,
            section_id: &hit.section_id,
            heading: &hit.heading,
            kind: hit.kind,
            text: &hit.text,
            context: hit.context.as_deref(),
            rank,
        }
    }

    fn of_passage(passage: &'a Passage, rank: usize) -> Source<'a> {
        Source {
            passage_id: &passage.id,
            guide: &passage.guide_slug,
            guide_title: &passage.guide_title,
            section_id: &passage.section_id,
            heading: &passage.heading,
            kind: passage.kind,
            text: &passage.text,
            context: passage.context.as_deref(),
            rank,
        }
    }
}

/// A piece of a passage that can go into an answer, with the verbatim quote that supports it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    /// What the reader sees (a table row is read with its column names).
    pub shown: String,
    /// Verbatim text of the guide.
    pub quote: String,
    pub source: Source<'a>,
    /// Order within the source.
    pub position: usize,
    pub score: f32,
    /// A list item: shown on a line of its own.
    pub item: bool,
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
    let question_factor = if crate::search::asks_about_questions(question) {
        1.0
    } else {
        QUESTION_UNIT_FACTOR
    };
    let weights = UnitWeights {
        terms: weights,
        question_factor,
    };
    let chosen = direct_answer(hits, corpus, &weights)
        .or_else(|| list_answer(question, hits, corpus, &weights))
        .unwrap_or_else(|| best_sentences(hits, corpus, &weights));
    let chosen: Vec<Candidate> = chosen
        .into_iter()
        .filter(|candidate| corpus.passage_contains(candidate.source.passage_id, &candidate.quote))
        .collect();
    if chosen.is_empty() {
        return refusal(question, results, corpus.guides.len());
    }
    let (answer, citations) = compose(&chosen);
    assembled_answer(question, results, answer, citations, Vec::new(), false)
}

/// An extractive answer or refusal, with the search's coverage.
fn assembled_answer(
    question: &str,
    results: &SearchResults,
    text: String,
    citations: Vec<Citation>,
    closest_sections: Vec<SectionRef>,
    refused: bool,
) -> Answer {
    Answer {
        question: question.to_string(),
        answer: text,
        refused,
        citations,
        mode: AnswerMode::Extractive,
        closest_sections,
        note: None,
        latency_ms: 0.0,
        usage: None,
        coverage: results.coverage,
        fallback: None,
        trimmed_sentences: 0,
    }
}

/// The answer's text and citations: one citation per passage (its quote is the first unit taken
/// from it), a marker after the last unit of each run from one passage, list items on lines of
/// their own.
fn compose(chosen: &[Candidate]) -> (String, Vec<Citation>) {
    let mut citations: Vec<Citation> = Vec::new();
    let mut answer = String::new();
    for (index, candidate) in chosen.iter().enumerate() {
        let source = &candidate.source;
        let n = match citations
            .iter()
            .position(|citation| citation.passage_id == source.passage_id)
        {
            Some(position) => position + 1,
            None => {
                citations.push(Citation {
                    n: citations.len() + 1,
                    guide: source.guide.to_string(),
                    guide_title: source.guide_title.to_string(),
                    section_id: source.section_id.to_string(),
                    heading: source.heading.to_string(),
                    quote: candidate.quote.clone(),
                    passage_id: source.passage_id.to_string(),
                });
                citations.len()
            }
        };
        if candidate.item {
            if !answer.is_empty() {
                answer.push('\n');
            }
            answer.push_str("• ");
        } else if !answer.is_empty() {
            answer.push(if answer.ends_with(':') { '\n' } else { ' ' });
        }
        answer.push_str(&candidate.shown);
        let next_same = chosen
            .get(index + 1)
            .is_some_and(|next| next.source.passage_id == source.passage_id && !next.item);
        if !next_same {
            answer.push_str(&format!(" [{n}]"));
        }
    }
    (answer, citations)
}

/// When the best passage is the guide's own answer to a question it asks (a question heading or a
/// bold question line), that answer is read from its start, so the direct answer leads; when the
/// best sentence lies further in, the window moves there after the lead sentence. Of the hits'
/// questions, the one that asks all the top hit's question asks and more of the user's words is
/// answered.
fn direct_answer<'a>(
    hits: &'a [Hit],
    corpus: &'a Corpus,
    weights: &UnitWeights,
) -> Option<Vec<Candidate<'a>>> {
    let mut top = hits.first()?;
    // The guide's question closest to the user's: another hit's question that asks all the top
    // one asks and more of the user's words ("How many trees do we need in random forest?" over
    // "What is random forest?"). A top question that matches none of the user's words is kept:
    // its body is what matched.
    let mut top_terms = matched_terms(guide_question(top)?, weights);
    for hit in &hits[1..] {
        let Some(question) = guide_question(hit) else {
            continue;
        };
        let terms = matched_terms(question, weights);
        if !top_terms.is_empty()
            && terms.len() > top_terms.len()
            && top_terms.iter().all(|term| terms.contains(term))
        {
            top = hit;
            top_terms = terms;
        }
    }
    let guide = corpus.guide(&top.guide)?;
    // The guide's answer: the passages under the same question, in order.
    let block: Vec<&Passage> = guide
        .passages_of(&top.section_id)
        .filter(|passage| passage.subheading == top.subheading)
        .collect();
    if block.is_empty() || !block.iter().any(|passage| passage.id == top.passage_id) {
        return None;
    }
    let units: Vec<Candidate> = block
        .iter()
        .flat_map(|passage| units_of(Source::of_passage(passage, 0), weights))
        .enumerate()
        .map(|(position, mut unit)| {
            unit.position = position;
            unit
        })
        .collect();
    let lead = units.first()?.clone();
    let best = units
        .iter()
        .max_by(|a, b| {
            a.score
                .total_cmp(&b.score)
                .then(b.position.cmp(&a.position))
        })?
        .clone();
    let mut chosen = vec![lead.clone()];
    let mut words = word_count(&lead.shown);
    let start = if best.position <= 1 || within_words(&units, best.position, DIRECT_ANSWER_WORDS) {
        1
    } else {
        best.position
    };
    for unit in units.iter().skip(start) {
        let unit_words = word_count(&unit.shown);
        if words + unit_words > DIRECT_ANSWER_WORDS.max(words) {
            break;
        }
        words += unit_words;
        chosen.push(unit.clone());
    }
    Some(chosen)
}

/// The question the guide itself asks over `hit`: its bold question line, or its heading when that
/// is a question.
fn guide_question(hit: &Hit) -> Option<&str> {
    match hit.subheading.as_deref() {
        Some(question) if question.contains('?') => Some(question),
        _ if hit.heading.trim_end().ends_with('?') => Some(&hit.heading),
        _ => None,
    }
}

/// Whether the units up to `position` fit in `limit` words.
fn within_words(units: &[Candidate], position: usize, limit: usize) -> bool {
    units
        .iter()
        .take(position + 1)
        .map(|unit| word_count(&unit.shown))
        .sum::<usize>()
        <= limit
}

/// Words that make a question ask for a list of things.
const LIST_CUES: &[&str] = &[
    "list",
    "steps",
    "types",
    "kinds",
    "ways",
    "examples",
    "methods",
    "techniques",
    "components",
    "stages",
    "phases",
    "criteria",
    "rubric",
    "graded",
    "grading",
    "what are the",
    "what are some",
    "name some",
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
/// the answer is the list: its lead-in, then its items (long items by their first sentences).
fn list_answer<'a>(
    question: &str,
    hits: &'a [Hit],
    corpus: &'a Corpus,
    weights: &UnitWeights,
) -> Option<Vec<Candidate<'a>>> {
    if !asks_for_list(question) {
        return None;
    }
    let top = hits.first()?;
    let guide = corpus.guide(&top.guide)?;
    let section: Vec<&Passage> = guide.passages_of(&top.section_id).collect();
    let position = section
        .iter()
        .position(|passage| passage.id == top.passage_id)?;
    // The list's first passage: the top one's first sibling, or the one after a lead-in.
    let first = match top.kind {
        PassageKind::ListItem => {
            let context = &section[position].context;
            let mut first = position;
            while first > 0
                && section[first - 1].kind == PassageKind::ListItem
                && &section[first - 1].context == context
            {
                first -= 1;
            }
            first
        }
        PassageKind::Paragraph if top.text.trim_end().ends_with(':') => {
            let next = section.get(position + 1)?;
            if next.kind != PassageKind::ListItem {
                return None;
            }
            position + 1
        }
        _ => return None,
    };
    let items = list_items(&section, first, weights, false);
    if items.len() < 3 {
        return None;
    }
    let mut chosen = Vec::new();
    let mut words = 0;
    // The lead-in, when a paragraph of the guide introduces the list.
    let lead_in = section[first].context.as_deref().and_then(|context| {
        section[..first]
            .iter()
            .rev()
            .find(|passage| passage.kind == PassageKind::Paragraph && passage.text == context)
    });
    if let Some(lead_in) = lead_in {
        words += word_count(&lead_in.text);
        chosen.push(Candidate {
            shown: lead_in.text.clone(),
            quote: lead_in.text.clone(),
            source: Source::of_passage(lead_in, 0),
            position: 0,
            score: 1.0,
            item: false,
        });
    }
    append_items(&mut chosen, &mut words, items);
    (chosen.len() >= 3).then_some(chosen)
}

/// The items of the list that starts at `section[first]` (the passages after it with the same
/// lead-in), one candidate per item line, each shown by its first sentences.
fn list_items<'a>(
    section: &[&'a Passage],
    first: usize,
    weights: &UnitWeights,
    read_on: bool,
) -> Vec<Candidate<'a>> {
    let Some(head) = section.get(first) else {
        return Vec::new();
    };
    section[first..]
        .iter()
        .take_while(|passage| {
            passage.kind == PassageKind::ListItem && passage.context == head.context
        })
        .flat_map(|passage| passage.text.lines().map(move |line| (*passage, line)))
        .enumerate()
        .map(|(position, (passage, line))| {
            let shown = if read_on {
                item_text(line, weights)
            } else {
                first_sentences(line, LIST_ITEM_WORDS)
            };
            Candidate {
                score: score_text(line, weights, 1.0),
                quote: shown.clone(),
                shown,
                source: Source::of_passage(passage, 0),
                position: position + 1,
                item: true,
            }
        })
        .collect()
}

/// What a list item shows: its first sentences, read on to the sentence that carries the
/// question's ideas best when that one lies further in ("Weeks 3–4. Eval-set design and v0.
/// Build a 500-example held-out eval set …"), within [`ITEM_READ_ON_WORDS`]; verbatim.
fn item_text(line: &str, weights: &UnitWeights) -> String {
    let shown = first_sentences(line, LIST_ITEM_WORDS);
    let sentences = split_sentences(line);
    let best = sentences
        .iter()
        .enumerate()
        .map(|(index, sentence)| (index, score_text(sentence, weights, 1.0)))
        .filter(|(_, score)| *score > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    let Some((best, _)) = best else {
        return shown;
    };
    let (Some(first), Some(last)) = (sentences.first(), sentences.get(best)) else {
        return shown;
    };
    let read_on = span(line, first, last);
    if read_on.len() > shown.len() && word_count(&read_on) <= ITEM_READ_ON_WORDS {
        read_on
    } else {
        shown
    }
}

/// Appends list items in order while the answer stays within [`MAX_ANSWER_WORDS`] (at most
/// [`MAX_LIST_ITEMS`]).
fn append_items<'a>(chosen: &mut Vec<Candidate<'a>>, words: &mut usize, items: Vec<Candidate<'a>>) {
    for item in items.into_iter().take(MAX_LIST_ITEMS) {
        let item_words = word_count(&item.shown);
        if !chosen.is_empty() && *words + item_words > MAX_ANSWER_WORDS {
            break;
        }
        *words += item_words;
        chosen.push(item);
    }
}

/// The list a lead-in sentence ("The senior interviewer is grading on:") introduces, when the
/// lead-in is a whole paragraph of the guide followed by list items that name it as context.
fn items_introduced_by<'a>(
    lead_in: &Source<'a>,
    corpus: &'a Corpus,
    weights: &UnitWeights,
) -> Vec<Candidate<'a>> {
    if lead_in.kind != PassageKind::Paragraph || !lead_in.text.trim_end().ends_with(':') {
        return Vec::new();
    }
    let Some(guide) = corpus.guide(lead_in.guide) else {
        return Vec::new();
    };
    let section: Vec<&Passage> = guide.passages_of(lead_in.section_id).collect();
    let Some(position) = section
        .iter()
        .position(|passage| passage.id == lead_in.passage_id)
    else {
        return Vec::new();
    };
    match section.get(position + 1) {
        Some(next)
            if next.kind == PassageKind::ListItem
                && next.context.as_deref() == Some(lead_in.text) =>
        {
            list_items(&section, position + 1, weights, true)
        }
        Some(_) => Vec::new(),
        // The lead-in ends its section: a heading then the list ("The most common ones include:"
        // / "## ML Algorithms" / "- Linear regression"). The next section's opening list is read.
        None => {
            let Some(next) = guide
                .passages
                .iter()
                .skip_while(|passage| passage.id != lead_in.passage_id)
                .nth(1)
            else {
                return Vec::new();
            };
            if next.kind != PassageKind::ListItem || next.context.is_some() {
                return Vec::new();
            }
            let next_section: Vec<&Passage> = guide.passages_of(&next.section_id).collect();
            if next_section.first().map(|first| &first.id) != Some(&next.id) {
                return Vec::new();
            }
            list_items(&next_section, 0, weights, true)
        }
    }
}

/// The best sentence read in its place: it and the sentences after it in the same passage (the
/// figures often follow the sentence that names the topic; a lead-in ending in ':' is read with
/// the list it introduces), then the best sentence of another passage when it scores well and the
/// answer stays short.
fn best_sentences<'a>(
    hits: &'a [Hit],
    corpus: &'a Corpus,
    weights: &UnitWeights,
) -> Vec<Candidate<'a>> {
    let units: Vec<Vec<Candidate>> = hits
        .iter()
        .enumerate()
        .map(|(rank, hit)| units_of(Source::of_hit(hit, rank), weights))
        .collect();
    let best = units
        .iter()
        .flatten()
        .filter(|unit| word_count(&unit.shown) > LABEL_MAX_WORDS)
        .max_by(|a, b| {
            a.score
                .total_cmp(&b.score)
                .then(b.source.rank.cmp(&a.source.rank))
                .then(b.position.cmp(&a.position))
        });
    let Some(best) = best.cloned() else {
        return Vec::new();
    };
    let best = earlier_lead(&units[best.source.rank], best, weights);
    let mut chosen = vec![best.clone()];
    let mut words = word_count(&best.shown);
    for unit in units[best.source.rank]
        .iter()
        .filter(|unit| unit.position > best.position)
    {
        let unit_words = word_count(&unit.shown);
        if words + unit_words > WINDOW_WORDS.max(words) {
            break;
        }
        words += unit_words;
        chosen.push(unit.clone());
    }
    if chosen
        .last()
        .is_some_and(|last| last.shown.trim_end().ends_with(':'))
    {
        let items = items_introduced_by(&best.source, corpus, weights);
        // Only a list that carries some of the question's ideas is read; otherwise the lead-in
        // merely named the topic and another passage's sentence is the better second unit.
        if items.iter().any(|item| item.score > 0.0) {
            append_items(&mut chosen, &mut words, items);
            return chosen;
        }
    }
    let mut others: Vec<&Candidate> = units
        .iter()
        .flatten()
        .filter(|unit| unit.source.rank != best.source.rank)
        .filter(|unit| word_count(&unit.shown) > LABEL_MAX_WORDS)
        .collect();
    others.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.source.rank.cmp(&b.source.rank))
    });
    let mut added = 0;
    for other in others {
        if added >= OTHER_PASSAGE_SENTENCES {
            break;
        }
        if other.score >= best.score * MIN_SHARE_OF_BEST
            && words + word_count(&other.shown) <= MAX_ANSWER_WORDS
            && !chosen
                .iter()
                .any(|c| c.quote == other.quote || c.shown == other.shown)
        {
            words += word_count(&other.shown);
            chosen.push(other.clone());
            added += 1;
        }
    }
    chosen
}

/// Where the reading of `best` starts: the earliest sentence of the same passage that carries all
/// of the question's weight that `best` carries, when `best` still fits in the window read from
/// there. Guides introduce an idea before they elaborate on it ("Bounce Rate calculates the
/// percentage of users who ... A high bounce rate may indicate ..."), and the short elaboration
/// otherwise wins on length alone.
fn earlier_lead<'a>(
    units: &[Candidate<'a>],
    best: Candidate<'a>,
    weights: &UnitWeights,
) -> Candidate<'a> {
    let wanted = matched_weight(&best.shown, weights);
    let mut words_to_best = word_count(&best.shown);
    let mut lead = None;
    for unit in units
        .iter()
        .filter(|unit| unit.position < best.position)
        .rev()
    {
        words_to_best += word_count(&unit.shown);
        if words_to_best > WINDOW_WORDS {
            break;
        }
        if unit.score > 0.0
            && !unit.shown.trim_end().ends_with('?')
            && matched_weight(&unit.shown, weights) >= wanted
        {
            lead = Some(unit);
        }
    }
    lead.cloned().unwrap_or(best)
}

/// The answer when the guides do not cover the question: say so and point at the closest sections.
pub(crate) fn refusal(question: &str, results: &SearchResults, guides: usize) -> Answer {
    let closest = closest_sections(&results.hits);
    let mut text = if let Some(reason) = &results.refusal_reason {
        reason.clone()
    } else if results.hits.is_empty() && results.notice.is_some() {
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
    assembled_answer(question, results, text, Vec::new(), closest, true)
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
fn score_text(text: &str, weights: &UnitWeights, rank_factor: f32) -> f32 {
    let matched = matched_weight(text, weights);
    if matched <= 0.0 {
        return 0.0;
    }
    let words = word_count(text) as f32;
    matched * rank_factor / (1.0 + words / LENGTH_SCALE_WORDS)
}

/// The question's ideas that `text` carries, each once.
fn matched_terms<'w>(text: &str, weights: &UnitWeights<'w>) -> Vec<&'w str> {
    let mut matched: Vec<&str> = Vec::new();
    for_each_guide_token(text, |token| {
        if let Some((&known, _)) = weights.terms.get_key_value(token) {
            if !matched.contains(&known) {
                matched.push(known);
            }
        }
    });
    matched
}

/// The summed weight of the question's ideas that `text` carries, each counted once however often
/// the text repeats it.
fn matched_weight(text: &str, weights: &UnitWeights) -> f32 {
    let mut matched_tokens: Vec<&str> = Vec::new();
    let mut matched = 0.0;
    // Units are the guides' sentences and rows: their words' stems are remembered.
    for_each_guide_token(text, |token| {
        if let Some((&known, &weight)) = weights.terms.get_key_value(token) {
            if !matched_tokens.contains(&known) {
                matched_tokens.push(known);
                matched += weight;
            }
        }
    });
    matched
}

/// The units of one passage, scored: sentences of prose and list items (a short label joined to
/// the sentence after it), or table rows read with their column names.
pub(crate) fn units_of<'a>(source: Source<'a>, weights: &UnitWeights) -> Vec<Candidate<'a>> {
    // Sentences of better-ranked passages win ties and near-ties.
    let rank_factor = 1.0 / (1.0 + RANK_DECAY * source.rank as f32);
    let unit = |shown: String, quote: String, position: usize, score: f32, item: bool| Candidate {
        shown,
        quote,
        source,
        position,
        score,
        item,
    };
    match source.kind {
        PassageKind::TableRow => {
            let header = source
                .context
                .and_then(|context| context.lines().last())
                .map(|line| line.split(" | ").collect::<Vec<_>>());
            let shown = render_row(header.as_deref(), source.text);
            let score = score_text(&shown, weights, rank_factor);
            vec![unit(shown, source.text.to_string(), 0, score, false)]
        }
        PassageKind::Table => {
            let mut lines = source.text.lines();
            let header: Vec<&str> = lines.next().unwrap_or_default().split(" | ").collect();
            lines
                .enumerate()
                .map(|(position, line)| {
                    let shown = render_row(Some(&header), line);
                    // Whole tables lose to the row passages that say the same thing.
                    let score = score_text(&shown, weights, rank_factor) * 0.9;
                    unit(shown, line.to_string(), position, score, false)
                })
                .collect()
        }
        PassageKind::Code => Vec::new(),
        PassageKind::Paragraph | PassageKind::ListItem => {
            let item = source.kind == PassageKind::ListItem;
            let mut candidates = Vec::new();
            let mut position = 0;
            for line in source.text.lines() {
                let sentences = split_sentences(line);
                let mut index = 0;
                while index < sentences.len() {
                    let sentence = sentences[index];
                    let is_label =
                        word_count(sentence) <= LABEL_MAX_WORDS && index + 1 < sentences.len();
                    let quote = if is_label {
                        span(line, sentence, sentences[index + 1])
                    } else {
                        sentence.to_string()
                    };
                    let mut score = score_text(&quote, weights, rank_factor);
                    if quote.trim_end().ends_with('?') {
                        // A question the guide asks is not its answer.
                        score *= weights.question_factor;
                    }
                    // An item's first sentence starts a line of its own; the rest follow it.
                    candidates.push(unit(
                        quote.clone(),
                        quote,
                        position,
                        score,
                        item && index == 0,
                    ));
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
            if !rest.is_empty()
                && header.len() == cells.len()
                && header.iter().any(|name| !name.is_empty()) =>
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
        assert!(asks_for_list("which types of drift are there"));
        assert!(!asks_for_list("google l4 tc?"));
        assert!(!asks_for_list("what 3 approaches did they weigh"));
    }
}
