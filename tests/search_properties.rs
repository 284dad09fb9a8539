//! Robustness of search and of the guide loader (issue 2, "Search"): no user text makes search panic
//! or fail (only a blank one is refused, with `EmptyQuery`), and no Markdown or byte soup makes the
//! loader panic (a clear error is fine). Plus the explicit odd queries the issue names.

use guidebot::corpus::{parse_guide_bytes, Corpus};
use guidebot::search::{SearchError, SearchIndex, SearchOptions, MAX_HITS, MAX_QUERY_CHARS};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

fn index() -> &'static SearchIndex {
    static INDEX: OnceLock<SearchIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let corpus = Corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"))
            .expect("bundled corpus loads");
        SearchIndex::build_in_ram(&corpus).expect("index builds")
    })
}

/// Checks the contract of `search` for one text and limit; panics (fails the case) on a breach.
fn check_search(text: &str, limit: usize) {
    let result = index().search(text, &SearchOptions { limit });
    match result {
        Err(SearchError::EmptyQuery) => {
            assert!(
                text.trim().is_empty(),
                "EmptyQuery for a non-blank text {text:?}"
            )
        }
        Err(other) => panic!("search failed for {text:?}: {other}"),
        Ok(results) => {
            assert!(
                !text.trim().is_empty(),
                "a blank text {text:?} was searched instead of refused"
            );
            assert!(
                results.hits.len() <= limit.clamp(1, MAX_HITS),
                "{} hits for limit {limit}",
                results.hits.len()
            );
            for (position, hit) in results.hits.iter().enumerate() {
                assert_eq!(hit.rank, position + 1, "ranks are 1, 2, 3...");
                assert!(hit.score.is_finite(), "score {} is not finite", hit.score);
            }
            assert!(
                (0.0..=1.0).contains(&results.coverage),
                "coverage {} out of 0..=1",
                results.coverage
            );
            if results.hits.is_empty() {
                assert!(!results.relevant, "relevant without any hit");
            }
        }
    }
}

/// Pieces users (and attackers) type: words of the guide, abbreviations, figures, query syntax,
/// punctuation, unicode, emoji, whitespace of every kind.
fn query_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "google", "L4", "l4", "tc", "comp", "MTS-3", "$280", "$170k–$220k", "meta", "E4", "IC4", "LoRA",
            "qlora", "p99", "rag", "spark", "promotion", "senior", "mid", "compensaton", "anthropc", "FAANG",
            "bread", "the", "a", "what's", "how", "do", "i", "U.S.", "A/B", "C++", "ML/AI", "vLLM",
        ])
        .prop_map(str::to_string),
        3 => prop::sample::select(vec![
            "title:", "heading:", "body:", "-", "+", "^", "^2", "~", "~2", "*", "?", ":", "\"", "'", "(", ")",
            "[", "]", "{", "}", "[a TO z]", "{* TO 3}", "AND", "OR", "NOT", "&&", "||", "!", "\\", "/", "<", ">",
            "=", "IN [a b]", "field:\"", "\"unclosed", "((((", "))))", "**", "`", "$", "%", "#", "@everyone",
            "<@123456>", "||spoiler||", "```", "\u{0}", "\u{feff}", "\u{200b}", "\u{202e}",
        ])
        .prop_map(str::to_string),
        2 => prop::sample::select(vec![
            "🚀", "🔥", "💯", "👩‍💻", "🇺🇸", "é", "ß", "İ", "ﬁ", "日本語", "Ελληνικά", "עברית", "العربية", "Ω", "∞",
            "≤", "–", "—", "…", "\u{301}", "ǅ",
        ])
        .prop_map(str::to_string),
        2 => "[a-zA-Z0-9]{1,12}",
        1 => any::<String>(),
    ]
}

fn separator() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        " ", " ", " ", "", "\n", "\t", "  ", "\u{a0}", "\u{3000}", ", ", "? ",
    ])
    .prop_map(str::to_string)
}

/// Sentences of pieces, from empty to past the 6000 characters of a Discord message.
fn query_text(max_pieces: usize) -> impl Strategy<Value = String> {
    prop::collection::vec((query_piece(), separator()), 0..max_pieces).prop_map(|pieces| {
        let text: String = pieces
            .into_iter()
            .flat_map(|(piece, sep)| [piece, sep])
            .collect();
        text.chars().take(6000).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_string_is_a_valid_query(text in any::<String>(), limit in 1usize..=40) {
        check_search(&text, limit);
    }

    #[test]
    fn query_syntax_unicode_and_emoji_never_break_search(text in query_text(24), limit in 1usize..=40) {
        check_search(&text, limit);
    }

    #[test]
    fn markdownish_text_never_panics_the_loader(text in markdownish_guide()) {
        let _ = parse_guide_bytes(Path::new("prop.md"), text.as_bytes());
    }

    #[test]
    fn guide_body_of_any_string_never_panics_the_loader(body in any::<String>()) {
        let text = format!("{VALID_FRONT_MATTER}{body}");
        let _ = parse_guide_bytes(Path::new("prop.md"), text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_loader(bytes in prop::collection::vec(any::<u8>(), 0..2048), with_front_matter in any::<bool>()) {
        let mut input = if with_front_matter { VALID_FRONT_MATTER.as_bytes().to_vec() } else { Vec::new() };
        input.extend(bytes);
        let _ = parse_guide_bytes(Path::new("prop.md"), &input);
    }
}

proptest! {
    // Long queries cost more (typo correction, many clauses): fewer cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn very_long_queries_never_break_search(text in query_text(1500), limit in 1usize..=40) {
        check_search(&text, limit);
    }
}

const VALID_FRONT_MATTER: &str =
    "+++\ntitle = \"Prop guide\"\nslug = \"prop-guide\"\nauthor = \"A\"\nyear = 2026\n+++\n";

/// Guide-like Markdown: front matter variants, then random headings, paragraphs, lists (nested,
/// ordered), tables (ragged, header-less), code fences (closed or not), quotes, HTML, odd unicode.
fn markdownish_guide() -> impl Strategy<Value = String> {
    let front_matter = prop::sample::select(vec![
        VALID_FRONT_MATTER.to_string(),
        format!("\u{feff}{VALID_FRONT_MATTER}"),
        VALID_FRONT_MATTER.replace('\n', "\r\n"),
        "+++\ntitle = \"x\"\nslug = \"x\"\nauthor = \"a\"\nyear = 2026\n".to_string(),
        "+++\ntitle = \nslug = \"x\"\n+++\n".to_string(),
        "+++\ntitle = \"\"\nslug = \"x\"\nauthor = \"a\"\nyear = 2026\n+++\n".to_string(),
        "+++\ntitle = \"t\"\nslug = \"Bad Slug!\"\nauthor = \"a\"\nyear = 2026\n+++\n".to_string(),
        "+++\ntitle = \"t\"\nslug = \"s\"\nauthor = \"a\"\nyear = 99999\n+++\n".to_string(),
        "+++\ntitle = \"t\"\nslug = \"s\"\nauthor = \"a\"\nyear = 2026\nunknown = 1\n+++\n"
            .to_string(),
        "---\ntitle: yaml\n---\n".to_string(),
        "+++\n+++\n".to_string(),
        "+++".to_string(),
        String::new(),
    ]);
    let line = prop_oneof![
        (1usize..=7, "[ -~]{0,30}")
            .prop_map(|(level, text)| format!("{} {text}", "#".repeat(level))),
        "[a-zA-Z0-9 .,'$–%:()]{0,80}",
        (
            prop::sample::select(vec![
                "- ", "* ", "+ ", "1. ", "2) ", "  - ", "    - ", "10. ", "- [ ] "
            ]),
            "[ -~]{0,40}"
        )
            .prop_map(|(marker, text)| format!("{marker}{text}")),
        (1usize..=5, 0usize..=5).prop_map(|(columns, cells)| {
            let header = format!("|{}", " h |".repeat(columns));
            let separator = format!("|{}", " --- |".repeat(columns));
            let row = format!("|{}", " $1k–$2k |".repeat(cells));
            format!("{header}\n{separator}\n{row}")
        }),
        prop::sample::select(vec![
            "| a | b |",
            "| --- | --- |",
            "|---|",
            "| x |",
            "|",
            "||",
            "```",
            "```rust",
            "~~~",
            "    indented code",
            "> quote",
            "> # heading in quote",
            ">> - nested",
            "<div>html</div>",
            "<!-- comment",
            "-->",
            "***",
            "---",
            "===",
            "[link](http://x)",
            "![img](x.png)",
            "[^1]: note",
            "**bold",
            "_it_",
            "\\",
            "&amp; &#0; &#x110000;",
            "",
            "",
            "",
            "🚀 emoji paragraph",
            "\u{0}",
            "\u{feff}",
            "\t\ttabs",
            "+++",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ];
    (
        front_matter,
        prop::collection::vec(line, 0..40),
        any::<bool>(),
    )
        .prop_map(|(front, lines, crlf)| {
            let newline = if crlf { "\r\n" } else { "\n" };
            format!("{front}{}", lines.join(newline))
        })
}

#[test]
fn empty_and_blank_queries_are_refused_with_a_message() {
    for text in ["", " ", "\n\t ", "\u{3000}\u{a0}"] {
        match index().search(text, &SearchOptions::default()) {
            Err(SearchError::EmptyQuery) => {}
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    assert!(SearchError::EmptyQuery.to_string().contains("empty"));
}

#[test]
fn a_6000_character_query_is_searched_and_cut() {
    let base = "what is the total comp for a google l4 mle vs meta e4 ds at mid level in 2026 ";
    let text: String = base.chars().cycle().take(6000).collect();
    assert_eq!(text.chars().count(), 6000);
    let results = index()
        .search(&text, &SearchOptions { limit: 5 })
        .expect("long query is searched");
    assert!(
        !results.hits.is_empty(),
        "a long on-topic query finds passages"
    );
    assert!(text.chars().count() > MAX_QUERY_CHARS);
    assert!(
        results.notice.is_some(),
        "the cut is reported in the notice"
    );
}

#[test]
fn emoji_only_queries_are_not_errors() {
    for text in ["🚀", "🚀🔥💯", "👩‍💻 🇺🇸", "\u{200b}"] {
        let results = index()
            .search(text, &SearchOptions::default())
            .expect("emoji query is searched");
        assert!(
            !results.relevant,
            "{text:?} is not a question the guide answers"
        );
    }
}

#[test]
fn exact_figures_and_names_are_findable() {
    for needle in ["L4", "$280", "MTS-3"] {
        let results = index()
            .search(needle, &SearchOptions::default())
            .expect("search succeeds");
        let top = results
            .hits
            .first()
            .unwrap_or_else(|| panic!("no hit for {needle:?}"));
        assert!(
            top.text.contains(needle),
            "top hit for {needle:?} does not contain it: {:?}",
            top.text
        );
    }
}

#[test]
fn query_syntax_is_searched_as_words() {
    for text in [
        "title:google",
        "-meta +google",
        "l4^10",
        "comp~2",
        "goo*",
        "\"unclosed",
        "[a TO z]",
        "(((",
        "comp: l4",
    ] {
        let results = index().search(text, &SearchOptions::default());
        assert!(results.is_ok(), "{text:?} gave {results:?}");
    }
}

/// A guide built from parts whose text is known: headings, paragraphs of sentences, bullet lists
/// (some nested) and a table. Each part's words are distinct letters-only words.
#[derive(Debug, Clone)]
enum Block {
    Paragraph(Vec<String>),
    List(Vec<(String, Vec<String>)>),
    Table(Vec<[String; 2]>),
}

fn word() -> impl Strategy<Value = String> {
    "[a-z]{3,9}"
}

fn sentence() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 4..12).prop_map(|words| {
        let mut sentence = words.join(" ");
        if let Some(first) = sentence.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        sentence + "."
    })
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        prop::collection::vec(sentence(), 1..5).prop_map(Block::Paragraph),
        prop::collection::vec((sentence(), prop::collection::vec(sentence(), 0..3)), 1..5)
            .prop_map(Block::List),
        prop::collection::vec((word(), word()).prop_map(|(a, b)| [a, b]), 1..4)
            .prop_map(Block::Table),
    ]
}

fn valid_guide() -> impl Strategy<Value = Vec<(String, Vec<Block>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(word(), 1..4).prop_map(|words| words.join(" ")),
            prop::collection::vec(block(), 1..4),
        ),
        1..5,
    )
}

fn render(sections: &[(String, Vec<Block>)]) -> String {
    let mut text = String::from("# The Guide\n\n");
    for (index, (heading, blocks)) in sections.iter().enumerate() {
        text.push_str(&format!("## {heading} {index}\n\n"));
        for block in blocks {
            match block {
                Block::Paragraph(sentences) => text.push_str(&sentences.join(" ")),
                Block::List(items) => {
                    for (item, children) in items {
                        text.push_str(&format!("- {item}\n"));
                        for child in children {
                            text.push_str(&format!("  - {child}\n"));
                        }
                    }
                }
                Block::Table(rows) => {
                    text.push_str("| Name | Value |\n| --- | --- |\n");
                    for [a, b] in rows {
                        text.push_str(&format!("| {a} | {b} |\n"));
                    }
                }
            }
            text.push_str("\n\n");
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A valid guide parses into exactly its sections, and every sentence, list item and table
    /// row it holds is a line (or within a line) of a passage of its section, verbatim.
    #[test]
    fn valid_guides_parse_into_the_sections_and_passages_they_contain(sections in valid_guide()) {
        let text = render(&sections);
        let guide = parse_guide_bytes(Path::new("prop-guide.md"), text.as_bytes()).expect("a valid guide parses");
        let ids: Vec<String> = guide.sections.iter().skip(1).map(|section| section.id.clone()).collect();
        let expected: Vec<String> = sections
            .iter()
            .enumerate()
            .map(|(index, (heading, _))| guidebot::corpus::slugify(&format!("{heading} {index}")))
            .collect();
        prop_assert_eq!(&ids, &expected);
        for ((_, blocks), id) in sections.iter().zip(&expected) {
            let lines: Vec<&str> = guide
                .passages_of(id)
                .flat_map(|passage| passage.text.lines())
                .collect();
            let holds = |wanted: &str| lines.iter().any(|line| line.contains(wanted));
            for block in blocks {
                match block {
                    Block::Paragraph(sentences) => for sentence in sentences {
                        prop_assert!(holds(sentence), "{} missing from {:?}", sentence, lines);
                    },
                    Block::List(items) => for (item, children) in items {
                        prop_assert!(holds(item), "{} missing from {:?}", item, lines);
                        for child in children {
                            prop_assert!(holds(child), "{} missing from {:?}", child, lines);
                        }
                    },
                    Block::Table(rows) => for [a, b] in rows {
                        let row = format!("{a} | {b}");
                        prop_assert!(holds(&row), "{} missing from {:?}", row, lines);
                    },
                }
            }
        }
    }
}
