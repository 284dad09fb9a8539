//! Highlighted snippets: the fragment of a passage holding most of the question's words, with
//! those words in **bold** (Discord Markdown).
//!
//! Why not Tantivy's `SnippetGenerator`: it runs the full English analyzer (stemmer included) over
//! every word of every hit, which was a fifth of the HTTP endpoint's CPU time under `/search` load.
//! Here each word is stemmed once per thread and its stem remembered; for a small index every
//! passage's words are stemmed and numbered when it opens ([`StemmedText`]), so a snippet compares
//! numbers.

use super::analysis::{with_remembered_stems, words};
use super::first_chars;
use rustc_hash::FxHashMap;

/// A word of the passage that matches a question stem: its byte range and the stem's weight.
#[derive(Debug, Clone)]
struct Match<'a> {
    start: usize,
    end: usize,
    stem: &'a str,
    weight: f32,
}

/// The best fragment of `text` (at most `max_chars` characters) for the weighted question stems,
/// matched words in bold, with "…" where the text was cut. Falls back to the start of the text
/// when no word matches (a hit on the heading alone).
pub(crate) fn highlighted_snippet(text: &str, stems: &[(String, f32)], max_chars: usize) -> String {
    let matches = find_matches(text, stems);
    rendered_snippet(text, &matches, max_chars)
}

/// A passage's shown text with the stem of each of its words as a number, worked out once when a
/// small index opens: a snippet then compares a few numbers per word instead of looking up every
/// word's stem by its text (that lookup was most of a snippet's cost).
#[derive(Debug)]
pub(crate) struct StemmedText {
    /// The text a snippet is cut from (a table row with its column names).
    shown: String,
    /// The words that have a stem (not stop words), in order.
    words: Vec<StemmedWord>,
}

/// A word of a [`StemmedText`]: its byte range and its stem's number in the [`StemNumbers`].
#[derive(Debug, Clone, Copy)]
struct StemmedWord {
    start: u32,
    end: u32,
    stem: u32,
}

/// The stems of every [`StemmedText`] of an index, numbered (guide words only).
#[derive(Debug, Default)]
pub(crate) struct StemNumbers {
    numbers: FxHashMap<String, u32>,
}

impl StemNumbers {
    /// `shown` with its words' stems numbered, new stems added to the table. `None` for a text
    /// too long for 32-bit offsets (its snippets are then highlighted from the text).
    pub(crate) fn stemmed(&mut self, shown: String) -> Option<StemmedText> {
        u32::try_from(shown.len()).ok()?;
        let mut stemmed_words = Vec::new();
        with_remembered_stems(|remembered| {
            for (start, word) in words(&shown) {
                let Some(stem) = remembered.stem(word) else {
                    continue;
                };
                let next = self.numbers.len() as u32;
                let number = match self.numbers.get(stem) {
                    Some(&number) => number,
                    None => {
                        self.numbers.insert(stem.to_string(), next);
                        next
                    }
                };
                stemmed_words.push(StemmedWord {
                    start: start as u32,
                    end: (start + word.len()) as u32,
                    stem: number,
                });
            }
        });
        Some(StemmedText {
            shown,
            words: stemmed_words,
        })
    }
}

/// [`highlighted_snippet`] of a [`StemmedText`]: the same snippet, from its numbered stems.
pub(crate) fn highlighted_stemmed(
    text: &StemmedText,
    numbers: &StemNumbers,
    stems: &[(String, f32)],
    max_chars: usize,
) -> String {
    // The question's stems by number, a later weight for the same stem replacing an earlier one
    // (as in `find_matches`); a stem no shown text has matches nothing.
    let mut wanted: Vec<(u32, &str, f32)> = Vec::with_capacity(stems.len());
    for (stem, weight) in stems {
        let Some(&number) = numbers.numbers.get(stem.as_str()) else {
            continue;
        };
        match wanted.iter_mut().find(|(seen, _, _)| *seen == number) {
            Some(entry) => entry.2 = *weight,
            None => wanted.push((number, stem.as_str(), *weight)),
        }
    }
    let matches: Vec<Match<'_>> = text
        .words
        .iter()
        .filter_map(|word| {
            let &(_, stem, weight) = wanted.iter().find(|(number, _, _)| *number == word.stem)?;
            Some(Match {
                start: word.start as usize,
                end: word.end as usize,
                stem,
                weight,
            })
        })
        .collect();
    rendered_snippet(&text.shown, &matches, max_chars)
}

/// The best window of `text` for `matches`, matched words in bold.
fn rendered_snippet(text: &str, matches: &[Match<'_>], max_chars: usize) -> String {
    if matches.is_empty() {
        return first_chars(text, max_chars);
    }
    let (start, end) = best_window(text, matches, max_chars);
    let mut rendered = String::with_capacity(end - start + 16);
    if start > 0 {
        rendered.push('…');
    }
    let mut cursor = start;
    for found in matches
        .iter()
        .filter(|found| found.start >= start && found.end <= end)
    {
        rendered.push_str(&text[cursor..found.start]);
        rendered.push_str("**");
        rendered.push_str(&text[found.start..found.end]);
        rendered.push_str("**");
        cursor = found.end;
    }
    rendered.push_str(&text[cursor..end]);
    if end < text.len() {
        rendered.push('…');
    }
    rendered
}

fn find_matches<'a>(text: &str, stems: &'a [(String, f32)]) -> Vec<Match<'a>> {
    let mut by_stem: FxHashMap<&str, f32> =
        FxHashMap::with_capacity_and_hasher(stems.len(), Default::default());
    for (stem, weight) in stems {
        by_stem.insert(stem.as_str(), *weight);
    }
    let mut matches = Vec::new();
    with_remembered_stems(|remembered| {
        for (start, word) in words(text) {
            let found = remembered
                .stem(word)
                .and_then(|token| by_stem.get_key_value(token));
            if let Some((stem, weight)) = found {
                matches.push(Match {
                    start,
                    end: start + word.len(),
                    stem,
                    weight: *weight,
                });
            }
        }
    });
    matches
}

/// The byte range of the window of at most `max_chars` characters whose distinct matched stems
/// weigh the most (the earliest on a tie), widened to fill the window and cut at word boundaries.
fn best_window(text: &str, matches: &[Match<'_>], max_chars: usize) -> (usize, usize) {
    // Byte offset of every character, once: windows are counted in characters, and counting them
    // from each match again was most of a snippet's cost on long passages.
    let char_starts: Vec<usize> = text.char_indices().map(|(offset, _)| offset).collect();
    if char_starts.len() <= max_chars {
        return (0, text.len());
    }
    let window_end = |start: usize| -> usize {
        let first = char_starts.partition_point(|&offset| offset < start);
        char_starts
            .get(first + max_chars)
            .copied()
            .unwrap_or(text.len())
    };
    let mut best = (f32::MIN, 0_usize);
    let mut seen: Vec<&str> = Vec::new();
    for (index, first) in matches.iter().enumerate() {
        let end = window_end(first.start);
        seen.clear();
        let mut score = 0.0;
        for found in matches[index..].iter().take_while(|found| found.end <= end) {
            if !seen.contains(&found.stem) {
                seen.push(found.stem);
                score += found.weight;
            }
        }
        if score > best.0 {
            best = (score, first.start);
        }
    }
    let mut start = best.1;
    // Near the end of the text, start earlier so the window is full.
    let start_char = char_starts.partition_point(|&offset| offset < start);
    let tail_chars = char_starts.len() - start_char;
    if tail_chars < max_chars {
        let back = max_chars - tail_chars;
        start = char_starts[start_char.saturating_sub(back.max(1))];
        if start > 0 {
            // Begin at a word: after the next space.
            start = text[start..]
                .find(' ')
                .map_or(start, |space| start + space + 1);
        }
    }
    let mut end = window_end(start);
    if end < text.len() {
        // End at a word: before the last space, unless that would cut the window in half.
        if let Some(space) = text[start..end].rfind(' ') {
            if space > (end - start) / 2 {
                end = start + space;
            }
        }
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::super::analysis::analyzed_tokens;
    use super::*;

    fn stems(words: &[&str]) -> Vec<(String, f32)> {
        words
            .iter()
            .flat_map(|word| analyzed_tokens(word))
            .map(|stem| (stem, 1.0))
            .collect()
    }

    #[test]
    fn matched_words_are_bold_whatever_their_inflection() {
        let snippet = highlighted_snippet(
            "Senior promotion is bottlenecked on designing ML systems.",
            &stems(&["promote", "system"]),
            220,
        );
        assert_eq!(
            snippet,
            "Senior **promotion** is bottlenecked on designing ML **systems**."
        );
    }

    #[test]
    fn a_long_text_is_cut_around_the_densest_window() {
        let filler = "lorem ipsum dolor sit amet ".repeat(20);
        let text = format!("{filler}the total comp band is wide {filler}");
        let snippet = highlighted_snippet(&text, &stems(&["total", "comp"]), 60);
        assert!(
            snippet.starts_with('…') && snippet.ends_with('…'),
            "{snippet}"
        );
        assert!(snippet.contains("**total** **comp**"), "{snippet}");
        assert!(snippet.chars().count() <= 60 + 2 + 8, "{snippet}");
    }

    #[test]
    fn no_match_gives_the_start_of_the_text() {
        assert_eq!(
            highlighted_snippet("Nothing to see here.", &stems(&["bread"]), 220),
            "Nothing to see here."
        );
    }

    #[test]
    fn numbered_stems_give_the_same_snippets() {
        let texts = [
            "Senior promotion is bottlenecked on designing ML systems.",
            "Company: Google MLE; Level: L4; Base: $170k–$220k; Total comp: $300k–$430k",
            &"é€ 3–5 years → mid, the total comp band is wide ".repeat(12),
        ];
        let mut numbers = StemNumbers::default();
        let stemmed: Vec<StemmedText> = texts
            .iter()
            .filter_map(|text| numbers.stemmed(text.to_string()))
            .collect();
        let questions = [
            stems(&["promote", "system"]),
            stems(&["total", "comp", "google", "l4"]),
            stems(&["mid", "years", "unknownword"]),
            Vec::new(),
        ];
        for (text, prepared) in texts.iter().zip(&stemmed) {
            for question in &questions {
                for max_chars in [40, 220] {
                    assert_eq!(
                        highlighted_stemmed(prepared, &numbers, question, max_chars),
                        highlighted_snippet(text, question, max_chars)
                    );
                }
            }
        }
    }

    #[test]
    fn multibyte_text_never_splits_a_character() {
        let text = "é€ 3–5 years → mid ".repeat(40);
        let snippet = highlighted_snippet(&text, &stems(&["mid", "years"]), 50);
        assert!(snippet.contains("**mid**") || snippet.contains("**years**"));
    }
}
