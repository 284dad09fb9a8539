//! The figures a sentence states — money, percentages, counts, durations, levels — read the same
//! way in an LLM's sentence and in the guide text it cites, so a claim can be checked against its
//! citation: "$300k to $430k", "$300K-$430K" and "$300k–$430k" state the same two figures.
//!
//! Years ("2026") are not figures (a sentence dating the guide needs no citation of the year), nor
//! are the numbers of a numbered list.

use regex::Regex;
use std::sync::LazyLock;

/// The figures of `text`, normalized ("300k", "1.2m", "30%", "3", "l4", "mts3"), each once, in
/// order.
pub fn figures(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = LIST_MARKER
            .find(line)
            .map_or(line, |marker| &line[marker.end()..]);
        for figure in line_figures(line) {
            if !out.contains(&figure) {
                out.push(figure);
            }
        }
    }
    out
}

/// A bullet or a list number at the start of a line ("- ", "2. ", "3) ").
static LIST_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+").expect("the list marker pattern is valid")
});

/// A level or code ("L4", "E4", "IC4+", "MTS-3"), or a number with an optional currency sign and
/// unit ("$1.2M", "300k", "30%", "3x").
static FIGURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?P<level>[A-Za-z]{1,5}-?\d+(?:\.\d+)?\+?)|(?P<currency>[$€£])?(?P<number>\d+(?:,\d{3})*(?:\.\d+)?)(?P<unit>bn|[kKmMbB%x])?",
    )
    .expect("the figure pattern is valid")
});

/// Words between two numbers that make them a range ("10-30%", "$150k to $190k").
const RANGE_JOINERS: &[&str] = &["-", "–", "—", "to", "and"];

fn line_figures(line: &str) -> Vec<String> {
    struct Found {
        end: usize,
        start: usize,
        value: String,
        unit: Option<String>,
        number: bool,
    }
    let mut found: Vec<Found> = Vec::new();
    for captures in FIGURE.captures_iter(line) {
        let Some(whole) = captures.get(0) else {
            continue;
        };
        let before = line[..whole.start()].chars().next_back();
        let after = line[whole.end()..].chars().next();
        // Part of a longer word ("GSM8K", "3rd", "k8s"): not a figure.
        if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric) {
            continue;
        }
        if let Some(level) = captures.name("level") {
            let value: String = level
                .as_str()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '.')
                .collect::<String>()
                .to_lowercase();
            found.push(Found {
                start: whole.start(),
                end: whole.end(),
                value,
                unit: None,
                number: false,
            });
            continue;
        }
        let Some(number) = captures.name("number") else {
            continue;
        };
        let value = number.as_str().replace(',', "");
        let unit = captures.name("unit").map(|unit| match unit.as_str() {
            "bn" | "B" | "b" => "b".to_string(),
            other => other.to_lowercase(),
        });
        let currency = captures.name("currency").is_some();
        let is_year = !currency
            && unit.is_none()
            && value.len() == 4
            && value
                .parse::<u32>()
                .is_ok_and(|year| (1900..=2100).contains(&year));
        if is_year {
            continue;
        }
        found.push(Found {
            start: whole.start(),
            end: whole.end(),
            value,
            unit,
            number: true,
        });
    }
    // "10-30%", "$150-190k": the first number of a range takes the second's unit.
    for index in (1..found.len()).rev() {
        let (head, tail) = found.split_at_mut(index);
        let (previous, next) = (&mut head[index - 1], &tail[0]);
        let between = line[previous.end..next.start].trim();
        if previous.number
            && next.number
            && previous.unit.is_none()
            && next.unit.is_some()
            && RANGE_JOINERS.contains(&between)
        {
            previous.unit = next.unit.clone();
        }
    }
    found
        .into_iter()
        .map(|figure| match figure.unit {
            Some(unit) => format!("{}{unit}", figure.value),
            None => figure.value,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_ranges_levels_and_counts() {
        assert_eq!(
            figures("A Google L4 MLE earns $1.2M, and offers include a $900k signing bonus."),
            vec!["l4", "1.2m", "900k"]
        );
        assert_eq!(
            figures("Google MLE | L4 | $170k–$220k | $300k–$430k"),
            vec!["l4", "170k", "220k", "300k", "430k"]
        );
        assert_eq!(figures("between $300K and $430K"), figures("$300k–$430k"));
        assert_eq!(figures("equity adds 10-30%"), vec!["10%", "30%"]);
        assert_eq!(figures("10% to 30%"), vec!["10%", "30%"]);
        assert_eq!(figures("$150-190k"), vec!["150k", "190k"]);
        assert_eq!(figures("MTS-3 (mid) at IC4+"), vec!["mts3", "ic4"]);
        assert_eq!(
            figures("3 rounds over 6 months, $1,200"),
            vec!["3", "6", "1200"]
        );
    }

    #[test]
    fn years_list_numbers_and_words_are_not_figures() {
        assert!(figures("In 2026 the guide says so.").is_empty());
        assert!(figures("1. Ship it\n2) also\n- more").is_empty());
        assert!(figures("GSM8K and k8s, the 3rd").is_empty());
        assert_eq!(figures("2. It takes 2 years"), vec!["2"]);
    }
}
