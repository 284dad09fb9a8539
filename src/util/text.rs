//! Shortening text for display, and telling empty text from text. One rule everywhere: count characters (not bytes), cut on a word
//! boundary when one is near, and end with an ellipsis, so nothing is ever cut mid-character.

/// Cuts `text` to at most `limit` characters, ending with "…" when cut. The cut moves back to the
/// last whitespace when that keeps more than half of the room, so words stay whole.
pub fn truncate(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    if let Some(space) = cut.rfind(char::is_whitespace) {
        if space > limit / 2 {
            cut.truncate(space);
        }
    }
    cut.push('…');
    cut
}

/// `text` trimmed, `None` when that leaves nothing (a setting that is off, or not set).
pub fn non_empty(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn cuts_by_characters_on_a_word_boundary_with_an_ellipsis() {
        assert_eq!(truncate("short", 10), "short");
        let long = "x".repeat(150);
        let cut = truncate(&long, 100);
        assert_eq!(cut.chars().count(), 100);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("alpha beta gamma delta", 14), "alpha beta…");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }
}
