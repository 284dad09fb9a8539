//! Pointing at a place in a TOML text: every file the bot reads (guides' front matter, the
//! vocabulary, company aliases, eval sets, the configuration) reports errors by line, counted
//! the same way; and a TOML value as the text a variable would hold.

use ::toml::de::DeValue;

/// The 1-based line of byte `offset` in `text` (offsets past the end count as the last line).
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = text.floor_char_boundary(offset.min(text.len()));
    text[..end].matches('\n').count() + 1
}

/// The line a TOML parse error of `text` points at; `fallback` when it points nowhere.
pub fn error_line(text: &str, error: &::toml::de::Error, fallback: usize) -> usize {
    error
        .span()
        .map_or(fallback, |span| line_of(text, span.start))
}

/// A TOML scalar as the text an environment variable would hold ("30", "1.5", "true", or the
/// string itself); `Err` says an array or table is not a single value.
pub fn scalar_text(value: &DeValue<'_>) -> Result<String, &'static str> {
    match value {
        DeValue::String(text) => Ok(text.to_string()),
        DeValue::Integer(n) => Ok(i64::from_str_radix(&n.as_str().replace('_', ""), n.radix())
            .map_or_else(|_| n.as_str().to_string(), |n| n.to_string())),
        DeValue::Float(n) => Ok(n.as_str().replace('_', "")),
        DeValue::Boolean(b) => Ok(b.to_string()),
        _ => Err("must be a single value (a string, number or boolean)"),
    }
}

#[cfg(test)]
mod tests {
    use super::{error_line, line_of};

    #[test]
    fn lines_count_from_one_and_errors_point_at_theirs() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb", 99), 2);
        let text = "x = 1\ny = \n";
        let error = toml::from_str::<toml::Table>(text).unwrap_err();
        assert_eq!(error_line(text, &error, 1), 2);
    }
}
