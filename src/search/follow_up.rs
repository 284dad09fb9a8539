//! Whether a follow-up question leans on the one before it ("and at Meta?", "what about L5?",
//! "why?") or stands alone: plain word rules, no model, so the same text always reads the same.

/// How much an idea borrowed from the earlier question weighs next to the follow-up's own
/// (measured on `tests/eval/conversations.toml`).
pub const BORROWED_WEIGHT: f32 = 0.5;

/// Words that open a follow-up which continues the previous question.
const CONNECTIVES: &[&str] = &[
    "and", "but", "or", "also", "so", "then", "why", "vs", "versus", "same", "ok", "okay",
];

/// Two-word openings that continue the previous question.
const OPENINGS: &[&str] = &[
    "what about",
    "how about",
    "what if",
    "how come",
    "compared to",
    "and what",
    "what else",
];

/// Words that point back at something said before.
const ANAPHORA: &[&str] = &[
    "it", "its", "that", "this", "those", "these", "they", "them", "their", "there", "same",
    "else", "one", "ones",
];

/// Words that carry no topic of their own (for counting a follow-up's own words).
const FILLER: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "were", "be", "do", "does", "did", "i", "me", "my",
    "you", "your", "we", "at", "in", "on", "for", "of", "to", "with", "about", "what", "whats",
    "what's", "how", "which", "who", "when", "where", "can", "could", "should", "would", "will",
    "please", "pls", "thanks", "thx", "hey", "hi", "like", "then",
];

/// Whether `word` (lowercase) is one every question has ("how", "can", "I", "the"...).
pub fn is_filler(word: &str) -> bool {
    FILLER.contains(&word)
}

/// A follow-up with at most this many words of its own is short enough to lean on context when
/// it finds nothing relevant alone.
pub const SHORT_FOLLOW_UP_WORDS: usize = 2;

/// How a follow-up reads against the question before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpKind {
    /// It opens with a connective or points back ("and at Meta?", "why is that?"): search it
    /// with the earlier question's ideas.
    Continues,
    /// Only a word or two of its own ("L5?"): borrow only if it finds nothing alone.
    Short,
    /// A question of its own: searched alone.
    StandsAlone,
}

/// Reads `text` as a follow-up.
pub fn classify(text: &str) -> FollowUpKind {
    let lowered = text.to_lowercase();
    let words: Vec<&str> = lowered
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
        .map(|word| word.trim_matches(|c| c == '\'' || c == '-'))
        .filter(|word| !word.is_empty())
        .collect();
    let Some(first) = words.first() else {
        return FollowUpKind::Continues;
    };
    let opening = words
        .get(1)
        .map(|second| format!("{first} {second}"))
        .unwrap_or_default();
    if CONNECTIVES.contains(first)
        || OPENINGS.contains(&opening.as_str())
        || words.iter().any(|word| ANAPHORA.contains(word))
    {
        return FollowUpKind::Continues;
    }
    let own = words
        .iter()
        .filter(|word| !FILLER.contains(word) && !ANAPHORA.contains(word))
        .count();
    if own <= SHORT_FOLLOW_UP_WORDS {
        FollowUpKind::Short
    } else {
        FollowUpKind::StandsAlone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_read_as_expected() {
        for text in [
            "and at Meta?",
            "what about L5?",
            "why?",
            "why is that",
            "is it worth it",
        ] {
            assert_eq!(classify(text), FollowUpKind::Continues, "{text}");
        }
        for text in ["L5?", "base salary?", "Netflix"] {
            assert_eq!(classify(text), FollowUpKind::Short, "{text}");
        }
        for text in [
            "should I learn rust or c++ for ML inference work",
            "what's the dominant LLM stack at mid in 2026",
        ] {
            assert_eq!(classify(text), FollowUpKind::StandsAlone, "{text}");
        }
    }
}
