//! The English analysis every part of search shares: the index's analyzer (words, lowercased, stop
//! words removed, stemmed) and the stop-word-keeping stemmer vocabulary terms are matched with.
//!
//! Why a module of its own: the vocabulary concepts, the query planner, highlighting and ranking
//! all analyze text the same way; keeping the analyzers here lets each of them depend on this one
//! floor instead of on each other.

use std::cell::RefCell;
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
    Token, TokenFilter, TokenStream, Tokenizer,
};

/// The analyzer for every text field: words, acronym plurals made singular, lowercased, English
/// stop words removed, stemmed.
pub fn english_analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(AcronymPlurals)
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop_words) => builder
            .filter(stop_words)
            .filter(Stemmer::new(Language::English))
            .build(),
        None => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(AcronymPlurals)
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build(),
    }
}

/// The singular of an acronym's plural ("LLMs", "GPUs", "KPIs"; typed in lower case, "llms",
/// "cnns": letters without a vowel), or `None` for any other word. The English stemmer keeps the
/// "s" of a word without a vowel before it, so "LLMs" and "LLM" were different words and a
/// question about "VLM architecture" missed the section headed "Vision-Language Models (VLMs)".
pub(crate) fn acronym_singular(word: &str) -> Option<&str> {
    let stem = word.strip_suffix('s')?;
    if stem.len() < 2 || !stem.is_ascii() {
        return None;
    }
    let capitals = stem.bytes().filter(u8::is_ascii_uppercase).count();
    let written_as_acronym = capitals >= 2
        && stem
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
    let typed_without_vowels = stem.len() >= 3
        && stem.bytes().all(|byte| byte.is_ascii_lowercase())
        && !stem.bytes().any(|byte| b"aeiouy".contains(&byte));
    (written_as_acronym || typed_without_vowels).then_some(stem)
}

/// Token filter applying [`acronym_singular`]; it runs before lower-casing, which erases the
/// capitals that mark an acronym.
#[derive(Clone, Copy)]
struct AcronymPlurals;

impl TokenFilter for AcronymPlurals {
    type Tokenizer<T: Tokenizer> = AcronymPluralsFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> Self::Tokenizer<T> {
        AcronymPluralsFilter(tokenizer)
    }
}

#[derive(Clone)]
struct AcronymPluralsFilter<T>(T);

impl<T: Tokenizer> Tokenizer for AcronymPluralsFilter<T> {
    type TokenStream<'a> = AcronymPluralsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        AcronymPluralsStream(self.0.token_stream(text))
    }
}

struct AcronymPluralsStream<T>(T);

impl<T: TokenStream> TokenStream for AcronymPluralsStream<T> {
    fn advance(&mut self) -> bool {
        if !self.0.advance() {
            return false;
        }
        let token = self.0.token_mut();
        if let Some(singular) = acronym_singular(&token.text) {
            let length = singular.len();
            token.text.truncate(length);
        }
        true
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

/// The analyzer's tokens (stop words removed, stemmed), as indexed.
pub(crate) fn analyzed_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for_each_analyzed_token(text, |token| tokens.push(token.to_string()));
    tokens
}

/// Calls `visit` with each of the analyzer's tokens of `text`, without collecting them (the
/// answer path scores many sentences per question).
pub(crate) fn for_each_analyzed_token(text: &str, mut visit: impl FnMut(&str)) {
    // Building an analyzer allocates its stop-word set and stemmer: keep one per thread.
    thread_local! {
        static ANALYZER: RefCell<TextAnalyzer> = RefCell::new(english_analyzer());
    }
    ANALYZER.with(|analyzer| {
        let mut analyzer = analyzer.borrow_mut();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            visit(&stream.token().text);
        }
    });
}

/// Words whose stem a thread remembers before it starts over (a guide's vocabulary is a few
/// thousand words; the cap only bounds a flood of made-up ones).
const REMEMBERED_STEMS: usize = 50_000;

/// The stems a thread has computed, by word (a run of letters and digits): highlighting and the
/// extractive answer read the same guide words request after request, and stemming them again was
/// most of a snippet's cost.
#[derive(Default)]
pub(crate) struct RememberedStems {
    /// Each remembered word's place in `stems`: a word seen before costs one lookup.
    places: rustc_hash::FxHashMap<Box<str>, u32>,
    /// The analyzer's token of each remembered word (`None`: a stop word).
    stems: Vec<Option<Box<str>>>,
}

impl RememberedStems {
    /// The analyzer's token for `word`, or `None` for a stop word.
    pub(crate) fn stem(&mut self, word: &str) -> Option<&str> {
        let place = match self.places.get(word) {
            Some(&place) => place,
            None => {
                if self.stems.len() >= REMEMBERED_STEMS {
                    self.places.clear();
                    self.stems.clear();
                }
                let mut stem = None;
                for_each_analyzed_token(word, |token| {
                    if stem.is_none() {
                        stem = Some(Box::from(token));
                    }
                });
                let place = self.stems.len() as u32;
                self.stems.push(stem);
                self.places.insert(Box::from(word), place);
                place
            }
        };
        self.stems
            .get(place as usize)
            .and_then(|stem| stem.as_deref())
    }
}

/// Calls `visit` with each of the analyzer's tokens of `text`, as [`for_each_analyzed_token`]
/// does, each word's stem read from the thread's [`RememberedStems`]. For the guides' own text
/// only: the memory is keyed by word with an unkeyed hash, and user text could crowd it.
/// `visit` must not analyze text itself (the thread's memory is borrowed while it runs).
pub(crate) fn for_each_remembered_token(text: &str, mut visit: impl FnMut(&str)) {
    with_remembered_stems(|remembered| {
        for (_, word) in words(text) {
            if let Some(token) = remembered.stem(word) {
                visit(token);
            }
        }
    });
}

/// The words of `text` (runs of letters and digits, as the index's tokenizer splits them) with
/// their byte offsets.
pub(crate) fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, character)) = rest.peek() {
            if character.is_alphanumeric() {
                break;
            }
            rest.next();
        }
        let (start, _) = *rest.peek()?;
        let mut end = start;
        while let Some(&(index, character)) = rest.peek() {
            if !character.is_alphanumeric() {
                break;
            }
            end = index + character.len_utf8();
            rest.next();
        }
        Some((start, &text[start..end]))
    })
}

/// Runs `work` with this thread's [`RememberedStems`].
pub(crate) fn with_remembered_stems<R>(work: impl FnOnce(&mut RememberedStems) -> R) -> R {
    thread_local! {
        static STEMS: RefCell<RememberedStems> = RefCell::new(RememberedStems::default());
    }
    STEMS.with(|stems| work(&mut stems.borrow_mut()))
}

/// Runs a thread's analyzer over `text` and collects the tokens.
fn tokens_of(analyzer: &RefCell<TextAnalyzer>, text: &str) -> Vec<String> {
    let mut analyzer = analyzer.borrow_mut();
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        tokens.push(stream.token().text.clone());
    }
    tokens
}

/// Stemmed words with stop words kept, for matching vocabulary terms as sequences.
pub(crate) fn stem_words(text: &str) -> Vec<String> {
    thread_local! {
        static STEMMER: RefCell<TextAnalyzer> = RefCell::new(
            TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(AcronymPlurals)
                .filter(LowerCaser)
                .filter(Stemmer::new(Language::English))
                .build(),
        );
    }
    STEMMER.with(|analyzer| tokens_of(analyzer, text))
}

/// Whether the user asks about questions ("what questions come up", "what should I ask"): then a
/// guide's own lists of questions are what they want.
pub fn asks_about_questions(question: &str) -> bool {
    question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| matches!(word, "question" | "questions" | "ask" | "asked" | "asks"))
}

/// Whether most of `text`'s lines are questions (a guide's list of interview questions): such a
/// passage repeats the user's words without answering them.
pub fn mostly_questions(text: &str) -> bool {
    let (mut lines, mut questions) = (0usize, 0usize);
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        lines += 1;
        questions += usize::from(line.ends_with('?'));
    }
    lines > 0 && questions * 2 >= lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acronym_plurals_are_their_singulars_and_words_stay_words() {
        for (plural, singular) in [
            ("LLMs", "llm"),
            ("GPUs", "gpu"),
            ("KPIs", "kpi"),
            ("llms", "llm"),
            ("cnns", "cnn"),
            ("DBs", "db"),
        ] {
            assert_eq!(
                analyzed_tokens(plural),
                vec![singular.to_string()],
                "{plural}"
            );
        }
        // Ordinary words, short ones and lowercase words with a vowel are the stemmer's business.
        for word in ["Ms", "bus", "gpus", "analysis", "PhDs"] {
            assert_eq!(acronym_singular(word), None, "{word}");
        }
    }

    #[test]
    fn a_remembered_stem_is_the_analyzer_s_token_and_a_stop_word_has_none() {
        for _ in 0..2 {
            // The second round reads the thread's memory: it must agree with the analyzer.
            for word in ["Promotions", "promoted", "systems", "L4", "the", "Which"] {
                let remembered =
                    with_remembered_stems(|stems| stems.stem(word).map(str::to_string));
                assert_eq!(
                    remembered,
                    analyzed_tokens(word).into_iter().next(),
                    "{word}"
                );
            }
        }
        assert!(with_remembered_stems(|stems| stems.stem("the").is_none()));
    }

    #[test]
    fn remembered_tokens_are_the_analyzer_s_tokens() {
        let texts = [
            "Google MLE — Level L4, Base $170k–$220k; the über-long naïve résumé's ML/AI (2026)!",
            "What's a KV-cache? Don't over-think it: A/B tests, k-means, tf-idf.",
            "averyveryveryveryveryveryveryverylongwordthatisdropped and the rest",
            "",
        ];
        for _ in 0..2 {
            for text in texts {
                let mut remembered = Vec::new();
                for_each_remembered_token(text, |token| remembered.push(token.to_string()));
                assert_eq!(remembered, analyzed_tokens(text), "{text}");
            }
        }
    }
}
