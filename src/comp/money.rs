//! USD amounts and ranges as the guides write them ("$170k–$220k", "$185k", "$700k+", "$1.2M"), read into integers.

use serde::Serialize;

/// A pay figure in whole US dollars, kept with the text it was read from so answers can quote it.
///
/// A single figure ("$185k") has `max == Some(min)`; an open top ("$700k+") has `max == None` and
/// `open_ended`; a range with an open top ("$500k–$900k+") keeps both bounds and sets `open_ended`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoneyRange {
    /// Bottom of the band in whole USD.
    pub min: u64,
    /// Top of the band in whole USD; `None` for a bare open top ("$700k+").
    pub max: Option<u64>,
    /// Whether the guide writes a "+": the band may go higher than `max` (or `min`).
    pub open_ended: bool,
    /// The figure exactly as the guide writes it, without any note ("$500k–$900k+").
    pub text: String,
}

impl MoneyRange {
    /// The number that ranks this figure in comparisons: the top of the range, or the floor when the
    /// top is open.
    pub fn sort_key(&self) -> (u64, u64) {
        (self.max.unwrap_or(self.min), self.min)
    }
}

/// A money cell split into its figure and the note that came with it ("(single-band)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MoneyCell {
    pub range: MoneyRange,
    pub notes: Vec<String>,
}

/// Whether a cell means "no figure" ("", "—", "n/a"), which is allowed for an optional column.
pub(crate) fn is_blank_cell(cell: &str) -> bool {
    let trimmed = cell.trim();
    trimmed.is_empty()
        || matches!(trimmed, "-" | "–" | "—" | "?")
        || trimmed.eq_ignore_ascii_case("n/a")
        || trimmed.eq_ignore_ascii_case("na")
        || trimmed.eq_ignore_ascii_case("none")
}

/// Reads a whole table cell: one figure or range, then optional notes in parentheses.
pub(crate) fn parse_money_cell(cell: &str) -> Result<MoneyCell, String> {
    let cell = cell.trim();
    let (figure, notes) = split_notes(cell)?;
    let range = parse_money(figure)?;
    Ok(MoneyCell { range, notes })
}

/// Splits "…figure… (note) (other note)" into the figure and its notes.
fn split_notes(cell: &str) -> Result<(&str, Vec<String>), String> {
    let Some(open) = cell.find('(') else {
        return Ok((cell, Vec::new()));
    };
    let figure = cell[..open].trim();
    let mut notes = Vec::new();
    let mut rest = &cell[open..];
    while let Some(stripped) = rest.strip_prefix('(') {
        let close = stripped
            .find(')')
            .ok_or_else(|| "a note in parentheses is not closed".to_string())?;
        let note = stripped[..close].trim();
        if !note.is_empty() {
            notes.push(note.to_string());
        }
        rest = stripped[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(format!("unexpected text {rest:?} after the notes"));
    }
    Ok((figure, notes))
}

/// Reads a figure or range with no notes: "$170k–$220k", "$170k-$220k", "$170k to $220k",
/// "$180–220k", "$185k", "$185,000", "$700k+", "$1.2M". Errors say what was wrong.
pub fn parse_money(text: &str) -> Result<MoneyRange, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the cell is empty".to_string());
    }
    let (body, open_ended) = match text.strip_suffix('+') {
        Some(body) => (body.trim_end(), true),
        None => (text, false),
    };
    let parts = split_range(body);
    let (min, max) = match parts.as_slice() {
        [single] => {
            let amount = parse_amount(single, None)?;
            (
                amount.value,
                if open_ended { None } else { Some(amount.value) },
            )
        }
        [low, high] => {
            let high = parse_amount(high, None)?;
            // "$180–220k": the low end borrows the high end's suffix.
            let low = parse_amount(low, high.suffix)?;
            if low.value > high.value {
                return Err(format!(
                    "the range starts above where it ends ({} > {})",
                    low.value, high.value
                ));
            }
            (low.value, Some(high.value))
        }
        _ => return Err("more than two figures in one range".to_string()),
    };
    Ok(MoneyRange {
        min,
        max,
        open_ended,
        text: text.to_string(),
    })
}

fn split_range(body: &str) -> Vec<&str> {
    for separator in ['–', '—', '-'] {
        if body.contains(separator) {
            return body.split(separator).map(str::trim).collect();
        }
    }
    if let Some((low, high)) = body.split_once(" to ") {
        return vec![low.trim(), high.trim()];
    }
    vec![body]
}

struct Amount {
    value: u64,
    suffix: Option<u64>,
}

/// One amount: optional "$" or "USD", digits with optional thousands commas and decimals, then an
/// optional k/K/M/B suffix. Only whole dollars are accepted.
fn parse_amount(raw: &str, borrowed_suffix: Option<u64>) -> Result<Amount, String> {
    let mut text = raw.trim();
    text = text
        .strip_prefix("USD")
        .map(str::trim_start)
        .unwrap_or(text);
    text = text.strip_prefix('$').unwrap_or(text).trim();
    if text.is_empty() {
        return Err(format!("{raw:?} has no number"));
    }
    let (digits, suffix) = match text.char_indices().last() {
        Some((index, character)) if character.is_ascii_alphabetic() => {
            let multiplier = match character {
                'k' | 'K' => 1_000,
                'm' | 'M' => 1_000_000,
                'b' | 'B' => 1_000_000_000,
                _ => return Err(format!("{raw:?} has an unknown unit {character:?}")),
            };
            (text[..index].trim_end(), Some(multiplier))
        }
        _ => (text, None),
    };
    let multiplier = suffix.or(borrowed_suffix).unwrap_or(1);
    let cleaned: String = digits.chars().filter(|&c| c != ',').collect();
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("{raw:?} is not a dollar amount"));
    }
    let (whole, fraction) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty() || fraction.contains('.') {
        return Err(format!("{raw:?} is not a dollar amount"));
    }
    let mut scale: u64 = 1;
    let mut fraction_value: u64 = 0;
    for digit in fraction.chars() {
        scale = scale
            .checked_mul(10)
            .ok_or_else(|| format!("{raw:?} has too many decimals"))?;
        fraction_value = fraction_value * 10 + u64::from(digit.to_digit(10).unwrap_or(0));
    }
    let whole_value: u64 = whole.parse().map_err(|_| format!("{raw:?} is too large"))?;
    let fraction_dollars = fraction_value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{raw:?} is too large"))?;
    if fraction_dollars % scale != 0 {
        return Err(format!("{raw:?} is not a whole number of dollars"));
    }
    let value = whole_value
        .checked_mul(multiplier)
        .and_then(|value| value.checked_add(fraction_dollars / scale))
        .ok_or_else(|| format!("{raw:?} is too large"))?;
    Ok(Amount { value, suffix })
}

/// Finds money figures in running prose: each hit is the byte range of a "$…" figure or range.
pub(crate) fn find_money_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] != b'$' {
            index += 1;
            continue;
        }
        let start = index;
        let mut end = scan_amount(text, index + 1);
        if end == index + 1 {
            index += 1;
            continue;
        }
        // A range: "–$220k", "-$220k", "–220k".
        let rest = &text[end..];
        for separator in ["–", "—", "-"] {
            if let Some(after) = rest.strip_prefix(separator) {
                let after_start = end + separator.len();
                let number_start = if after.starts_with('$') {
                    after_start + 1
                } else {
                    after_start
                };
                let number_end = scan_amount(text, number_start);
                if number_end > number_start {
                    end = number_end;
                }
                break;
            }
        }
        if text[end..].starts_with('+') {
            end += 1;
        }
        spans.push((start, end));
        index = end;
    }
    spans
}

/// Scans digits (with commas and one decimal point) and an optional k/M/B unit from `from`; returns
/// the end offset (== `from` when there is no number).
fn scan_amount(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut end = from;
    let mut seen_digit = false;
    while end < bytes.len() {
        let byte = bytes[end];
        if byte.is_ascii_digit() {
            seen_digit = true;
            end += 1;
        } else if (byte == b',' || byte == b'.')
            && seen_digit
            && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)
        {
            end += 1;
        } else {
            break;
        }
    }
    if !seen_digit {
        return from;
    }
    if let Some(&unit) = bytes.get(end) {
        let next_is_word = bytes
            .get(end + 1)
            .is_some_and(|next| next.is_ascii_alphanumeric());
        if matches!(unit, b'k' | b'K' | b'M' | b'B') && !next_is_word {
            end += 1;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_single_figures_and_open_tops_are_read_exactly() {
        let range = parse_money("$170k–$220k").unwrap();
        assert_eq!(
            (range.min, range.max, range.open_ended),
            (170_000, Some(220_000), false)
        );
        let open = parse_money("$500k–$900k+").unwrap();
        assert_eq!(
            (open.min, open.max, open.open_ended),
            (500_000, Some(900_000), true)
        );
        assert_eq!(open.text, "$500k–$900k+");
        let floor = parse_money("$700k+").unwrap();
        assert_eq!(
            (floor.min, floor.max, floor.open_ended),
            (700_000, None, true)
        );
        let single = parse_money("$185k").unwrap();
        assert_eq!((single.min, single.max), (185_000, Some(185_000)));
        assert_eq!(parse_money("$185,000").unwrap().min, 185_000);
        assert_eq!(parse_money("$1.2M").unwrap().min, 1_200_000);
        assert_eq!(parse_money("$172.5k").unwrap().min, 172_500);
        let shared = parse_money("$180–220k").unwrap();
        assert_eq!((shared.min, shared.max), (180_000, Some(220_000)));
        let hyphen = parse_money("$180k - $220k").unwrap();
        assert_eq!((hyphen.min, hyphen.max), (180_000, Some(220_000)));
        let words = parse_money("$180k to $220k").unwrap();
        assert_eq!((words.min, words.max), (180_000, Some(220_000)));
    }

    #[test]
    fn bad_figures_are_errors() {
        for bad in [
            "lots",
            "$",
            "$300k–$200k",
            "$1k–$2k–$3k",
            "$1.2345k",
            "$12x",
            "",
        ] {
            assert!(parse_money(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn cells_keep_their_notes() {
        let cell = parse_money_cell("$380k–$580k (single-band)").unwrap();
        assert_eq!(cell.range.text, "$380k–$580k");
        assert_eq!(cell.notes, vec!["single-band".to_string()]);
        assert!(parse_money_cell("$380k (oops").is_err());
        assert!(parse_money_cell("$380k (a) trailing").is_err());
    }

    #[test]
    fn prose_figures_are_found() {
        let text = "FAANG-tier mid total comp $250k–$380k per levels.fyi; AI-labs sit $400k–$700k+. $280 of compute, $40k/month";
        let found: Vec<&str> = find_money_spans(text)
            .into_iter()
            .map(|(start, end)| &text[start..end])
            .collect();
        assert_eq!(found, vec!["$250k–$380k", "$400k–$700k+", "$280", "$40k"]);
    }
}
