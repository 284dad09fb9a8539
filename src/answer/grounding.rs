//! Checks an LLM's answer against the passages it was given: markers must point at sent passages,
//! quotes must be verbatim in the corpus, and an answer left with no valid citation is rejected.

use super::extractive::{units_of, Source};
use super::{Answer, AnswerMode, Citation};
use crate::corpus::{collapse_whitespace, Corpus};
use crate::llm::LlmCompletion;
use crate::search::Hit;
use std::collections::HashMap;

/// Longest quote kept from a provider's cited text; longer ones are cut at a sentence end if possible.
const MAX_QUOTE_CHARS: usize = 600;

/// Turns a completion into a cited answer, or `None` when no citation survives the checks.
/// `sent` are the passages numbered 1.. in the request; `query_terms` pick a quote for `[n]`
/// markers that came without quoted text.
pub fn ground_completion(
    question: &str,
    completion: &LlmCompletion,
    sent: &[Hit],
    corpus: &Corpus,
    query_terms: &[String],
    mode: AnswerMode,
) -> Option<Answer> {
    let valid = |n: usize| n >= 1 && n <= sent.len();
    // Renumber in order of first appearance so the reader sees [1], [2], ...
    let mut order: Vec<usize> = Vec::new();
    let text = rewrite_markers(&completion.text, |n| {
        if !valid(n) {
            return None;
        }
        let position = match order.iter().position(|&seen| seen == n) {
            Some(position) => position,
            None => {
                order.push(n);
                order.len() - 1
            }
        };
        Some(position + 1)
    });
    if order.is_empty() {
        return None;
    }
    let terms: HashMap<&str, f32> = query_terms
        .iter()
        .map(|term| (term.as_str(), 1.0))
        .collect();
    let mut citations = Vec::with_capacity(order.len());
    for (index, &passage_number) in order.iter().enumerate() {
        let hit = &sent[passage_number - 1];
        let provider_quote = completion
            .citations
            .iter()
            .filter(|citation| citation.passage_number == passage_number)
            .filter_map(|citation| citation.cited_text.as_deref())
            .map(|quote| shorten_quote(&collapse_whitespace(quote)))
            .find(|quote| corpus.contains_quote(quote));
        let quote = match provider_quote {
            Some(quote) => quote,
            None => best_quote(hit, &terms, corpus)?,
        };
        citations.push(Citation {
            n: index + 1,
            guide: hit.guide.clone(),
            guide_title: hit.guide_title.clone(),
            section_id: hit.section_id.clone(),
            heading: hit.heading.clone(),
            quote,
            passage_id: hit.passage_id.clone(),
        });
    }
    Some(Answer {
        question: question.to_string(),
        answer: text.trim().to_string(),
        citations,
        refused: false,
        mode,
        closest_sections: Vec::new(),
        note: None,
        latency_ms: 0.0,
        usage: Some(completion.usage),
        coverage: 0.0,
        fallback: None,
    })
}

/// The sentence of a passage that best matches the question, verbatim.
fn best_quote(hit: &Hit, terms: &HashMap<&str, f32>, corpus: &Corpus) -> Option<String> {
    let mut candidates = units_of(Source::of_hit(hit, 0), terms);
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.position.cmp(&b.position))
    });
    candidates
        .into_iter()
        .map(|candidate| candidate.quote)
        .find(|quote| corpus.contains_quote(quote))
}

/// Cuts a long quote at the last sentence end before the limit (still a verbatim prefix).
fn shorten_quote(quote: &str) -> String {
    if quote.chars().count() <= MAX_QUOTE_CHARS {
        return quote.to_string();
    }
    let prefix: String = quote.chars().take(MAX_QUOTE_CHARS).collect();
    match prefix.rfind(". ") {
        Some(end) if end > MAX_QUOTE_CHARS / 3 => prefix[..=end].to_string(),
        _ => prefix,
    }
}

/// Rewrites citation markers: `[1]`, `[1][2]`, `[1, 2]`. `map` returns the new number or `None` to
/// drop it; a bracket whose numbers are all dropped disappears with the space before it.
pub(crate) fn rewrite_markers(text: &str, mut map: impl FnMut(usize) -> Option<usize>) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let (before, from_open) = rest.split_at(open);
        output.push_str(before);
        let Some(close) = from_open.find(']') else {
            output.push_str(from_open);
            rest = "";
            break;
        };
        let inner = &from_open[1..close];
        let numbers: Option<Vec<usize>> = inner
            .split(',')
            .map(|part| part.trim().parse::<usize>().ok())
            .collect();
        match numbers {
            Some(numbers) if !inner.trim().is_empty() => {
                let mapped: Vec<usize> = numbers.into_iter().filter_map(&mut map).collect();
                if mapped.is_empty() {
                    while output.ends_with(' ') {
                        output.pop();
                    }
                } else {
                    let mut seen = Vec::new();
                    for number in mapped {
                        if !seen.contains(&number) {
                            seen.push(number);
                            output.push_str(&format!("[{number}]"));
                        }
                    }
                }
            }
            _ => output.push_str(&from_open[..=close]),
        }
        rest = &from_open[close + 1..];
    }
    output.push_str(rest);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_renumbered_and_invalid_ones_dropped() {
        let text = "A [3]. B [1, 9]. C [3][1]. D [7]. Keep [x] and [].";
        let rewritten = rewrite_markers(text, |n| match n {
            3 => Some(1),
            1 => Some(2),
            _ => None,
        });
        assert_eq!(rewritten, "A [1]. B [2]. C [1][2]. D. Keep [x] and [].");
    }

    #[test]
    fn long_quotes_are_cut_at_a_sentence_end() {
        let quote = format!("{}. {}", "a".repeat(300), "b".repeat(400));
        let short = shorten_quote(&quote);
        assert!(short.ends_with('.') && short.len() <= MAX_QUOTE_CHARS);
    }
}
