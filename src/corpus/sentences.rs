//! Sentence splitting tuned for the guides' prose: abbreviations ("e.g.", "vs.", "et al."), decimals
//! ("2.5"), domains ("levels.fyi") and initials do not end a sentence.

/// Words after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "vs", "etc", "al", "approx", "dr", "mr", "ms", "no", "fig", "inc", "u.s", "cf",
];

/// Splits `text` into sentences, each returned as a slice of `text` (so quotes stay verbatim).
pub fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let ends = matches!(byte, b'.' | b'?' | b'!');
        if ends {
            // Consume closing quotes/brackets right after the mark.
            let mut end = index + 1;
            while end < bytes.len() && matches!(bytes[end], b'\'' | b'"' | b')') {
                end += 1;
            }
            let followed_by_space = end >= bytes.len() || bytes[end] == b' ' || bytes[end] == b'\n';
            let next_starts_sentence = next_word_starts_sentence(&text[end..]);
            if followed_by_space
                && next_starts_sentence
                && !(byte == b'.' && is_abbreviation(&text[start..index]))
            {
                let sentence = text[start..end].trim();
                if !sentence.is_empty() {
                    sentences.push(sentence);
                }
                start = end;
            }
            index = end;
            continue;
        }
        index += 1;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        sentences.push(rest);
    }
    sentences
}

fn next_word_starts_sentence(rest: &str) -> bool {
    match rest.trim_start().chars().next() {
        None => true,
        Some(character) => {
            character.is_uppercase()
                || character.is_ascii_digit()
                || matches!(character, '(' | '\'' | '"' | '$' | '‘' | '“')
        }
    }
}

fn is_abbreviation(before: &str) -> bool {
    let last_word = before
        .rsplit(|character: char| character.is_whitespace() || character == '(')
        .next()
        .unwrap_or("")
        .to_lowercase();
    if last_word.chars().count() == 1 && last_word.chars().all(char::is_alphabetic) {
        return true; // an initial: "A. Smith"
    }
    ABBREVIATIONS.contains(&last_word.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_sentence_ends_only() {
        let text = "Scope ownership. You're given a problem ('find the next 5%') not a ticket. Vaswani et al. wrote it, e.g. in 2017. Costs ~$280 vs. $40k/month.";
        assert_eq!(
            split_sentences(text),
            vec![
                "Scope ownership.",
                "You're given a problem ('find the next 5%') not a ticket.",
                "Vaswani et al. wrote it, e.g. in 2017.",
                "Costs ~$280 vs. $40k/month."
            ]
        );
    }

    #[test]
    fn questions_and_decimals() {
        assert_eq!(
            split_sentences("What's the metric? Qwen-2.5 7B works. It cites levels.fyi data"),
            vec![
                "What's the metric?",
                "Qwen-2.5 7B works.",
                "It cites levels.fyi data"
            ]
        );
    }
}
