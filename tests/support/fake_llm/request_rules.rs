//! What a request guidebot sends must satisfy beyond its exact bytes. Anthropic publishes no
//! OpenAPI document, so its Messages API rules are written out here from its documentation (see
//! `shared/notes/llm-apis.md`): known top-level fields only, one user turn, `search_result` blocks
//! whose `content` is text blocks, citations enabled on all of them or none, the question last.
//! OpenAI-compatible bodies are validated against OpenAI's schema (`openai_spec`). For both, the
//! grounding rules: every passage line verbatim in the guide's Markdown, Anthropic blocks of one
//! sentence or one table row, and no text sent twice (overlapping hits merged).

use guidebot::corpus::sentences::split_sentences;
use guidebot::eval::SourceTexts;
use serde_json::Value;
use std::collections::HashSet;

const TOP_LEVEL: &[&str] = &[
    "model",
    "max_tokens",
    "system",
    "messages",
    "stream",
    "temperature",
];

/// Panics unless `body` is a Messages API request as the documentation describes it.
pub fn assert_valid_anthropic_request(body: &Value) {
    let object = body.as_object().expect("the body is an object");
    for key in object.keys() {
        assert!(TOP_LEVEL.contains(&key.as_str()), "unknown field {key:?}");
    }
    assert!(body["model"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["max_tokens"].as_u64().is_some_and(|n| n >= 1));
    if let Some(t) = object.get("temperature") {
        assert!(t.as_f64().is_some_and(|t| (0.0..=1.0).contains(&t)), "{t}");
    }
    if let Some(stream) = object.get("stream") {
        assert!(stream.is_boolean());
    }
    if let Some(system) = object.get("system") {
        assert!(system.as_str().is_some_and(|s| !s.is_empty()));
    }
    let messages = body["messages"].as_array().expect("messages is an array");
    assert_eq!(messages.len(), 1, "one user turn");
    assert_eq!(messages[0]["role"], "user");
    let content = messages[0]["content"]
        .as_array()
        .expect("content is an array of blocks");
    let (question, results) = content.split_last().expect("content is not empty");
    assert_eq!(question["type"], "text", "the question comes last");
    assert!(question["text"].as_str().is_some_and(|t| !t.is_empty()));
    let mut enabled = HashSet::new();
    for result in results {
        assert_eq!(result["type"], "search_result", "{result}");
        let keys: HashSet<&str> = result
            .as_object()
            .expect("a block is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            HashSet::from(["type", "source", "title", "content", "citations"]),
            "{result}"
        );
        assert!(result["source"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(result["title"].as_str().is_some_and(|s| !s.is_empty()));
        let blocks = result["content"].as_array().expect("content is an array");
        assert!(!blocks.is_empty());
        for block in blocks {
            assert_eq!(block.as_object().map(|o| o.len()), Some(2), "{block}");
            assert_eq!(block["type"], "text");
            assert!(block["text"].as_str().is_some_and(|t| !t.trim().is_empty()));
        }
        enabled.insert(result["citations"]["enabled"].as_bool());
    }
    assert!(
        enabled.len() <= 1,
        "citations on all search results or none"
    );
}

/// Panics unless every block of every search result is verbatim in its guide's Markdown, one
/// sentence or one table line, and sent once.
pub fn assert_citable_anthropic_blocks(body: &Value, sources: &SourceTexts) {
    let mut seen = HashSet::new();
    let results = body["messages"][0]["content"].as_array().expect("content");
    for result in results.iter().filter(|r| r["type"] == "search_result") {
        let guide = guide_of(result["source"].as_str().unwrap_or_default());
        for block in result["content"].as_array().expect("blocks") {
            let text = block["text"].as_str().expect("text");
            assert!(!text.contains('\n'), "a block is one line: {text:?}");
            assert!(
                text.contains(" | ") || split_sentences(text).len() == 1,
                "a block is one sentence or one table line: {text:?}"
            );
            assert!(
                sources.is_verbatim(guide, text),
                "not verbatim in {guide}: {text:?}"
            );
            assert!(seen.insert(text.to_string()), "sent twice: {text:?}");
        }
    }
}

/// Panics unless every line of every numbered passage of an OpenAI-compatible user turn is
/// verbatim in its guide's Markdown and sent once.
pub fn assert_citable_openai_passages(body: &Value, sources: &SourceTexts) {
    let user = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .expect("a user turn");
    let question_at = user
        .rfind("\n\nQuestion: ")
        .expect("the question comes last");
    let mut seen = HashSet::new();
    for passage in user[..question_at].split("\n\n") {
        let mut lines = passage.lines();
        let header = lines.next().expect("a passage header");
        assert!(header.starts_with('['), "{header}");
        let source = header
            .rsplit('(')
            .next()
            .map(|s| s.trim_end_matches(')'))
            .expect("a source");
        for line in lines {
            assert!(
                sources.is_verbatim(guide_of(source), line),
                "not verbatim: {line:?}"
            );
            assert!(seen.insert(line.to_string()), "sent twice: {line:?}");
        }
    }
}

fn guide_of(source: &str) -> &str {
    source.split('#').next().unwrap_or(source)
}
