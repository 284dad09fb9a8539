//! Scripted answers for the grounding scenarios: a [`Script`] answers any request the engine sends,
//! in the provider's format (Anthropic or OpenAI-compatible, by the path) and transport (SSE when
//! the body asks to stream, one JSON body otherwise), citing the blocks it finds in that request
//! by their text, so a script survives changes in ranking or passage order. With earlier turns of a
//! conversation in the request, the passages are in the last user message (the current turn).

use super::{
    a_block_start, a_block_stop, a_cite, a_message_delta, a_message_start, a_message_stop, a_text,
    anthropic_message, anthropic_sse, json_response, openai_chunk, openai_completion, openai_sse,
    openai_usage_chunk, sse_response,
};
use serde_json::{json, Value};
use wiremock::{Request, Respond, ResponseTemplate};

/// What one stretch of the answer cites.
#[derive(Debug, Clone)]
pub enum Cite {
    /// The sent block whose text is exactly this, cited faithfully (Anthropic: its text and its
    /// block index; OpenAI-compatible: `[n]` of the passage holding it).
    Block(&'static str),
    /// The sent block whose text is `block`, but claiming `cited_text` (a fabricated quote; an
    /// OpenAI-compatible answer can only write `[n]`, so there it is the same as `Block`).
    Claims {
        block: &'static str,
        cited_text: &'static str,
    },
    /// A search result that was never sent: 0-based index (OpenAI-compatible: `[index + 1]`).
    Unsent(usize),
}

/// One stretch of the answer.
#[derive(Debug, Clone)]
pub enum Part {
    /// Text citing nothing.
    Text(&'static str),
    /// Text with citations (Anthropic: a text block with `citations`; OpenAI-compatible: the
    /// text followed by its `[n]` markers).
    Cited(&'static str, Vec<Cite>),
}

/// A scripted answer, for either provider and either transport.
#[derive(Debug, Clone)]
pub struct Script(pub Vec<Part>);

impl Respond for Script {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = match request.body_json() {
            Ok(body) => body,
            Err(error) => return ResponseTemplate::new(400).set_body_string(error.to_string()),
        };
        let stream = body["stream"] == json!(true);
        if request.url.path().ends_with("/messages") {
            if stream {
                sse_response(anthropic_sse(&self.anthropic_events(&body)))
            } else {
                json_response(200, self.anthropic_message(&body))
            }
        } else if stream {
            sse_response(openai_sse(&self.openai_chunks(&body), true))
        } else {
            json_response(
                200,
                openai_completion(&self.openai_text(&body), "stop", 900, 40),
            )
        }
    }
}

impl Script {
    /// The answer's text as an OpenAI-compatible model writes it: `[n]` after each cited stretch.
    pub fn openai_text(&self, body: &Value) -> String {
        let passages = openai_passages(body);
        let mut text = String::new();
        for part in &self.0 {
            match part {
                Part::Text(words) => text.push_str(words),
                Part::Cited(words, cites) => {
                    text.push_str(words);
                    let mut numbers: Vec<usize> = Vec::new();
                    for cite in cites {
                        let number = match cite {
                            Cite::Block(block) | Cite::Claims { block, .. } => {
                                openai_number(&passages, block)
                            }
                            Cite::Unsent(index) => index + 1,
                        };
                        if !numbers.contains(&number) {
                            numbers.push(number);
                        }
                    }
                    text.push(' ');
                    for number in numbers {
                        text.push_str(&format!("[{number}]"));
                    }
                }
            }
        }
        text
    }

    /// The streamed chunks of [`Script::openai_text`]: a few content chunks, the finish reason,
    /// the usage.
    pub fn openai_chunks(&self, body: &Value) -> Vec<Value> {
        let text = self.openai_text(body);
        let mut chunks: Vec<Value> = halves(&text)
            .into_iter()
            .map(|piece| openai_chunk(Some(piece), None))
            .collect();
        chunks.push(openai_chunk(None, Some("stop")));
        chunks.push(openai_usage_chunk(900, 40));
        chunks
    }

    /// The Messages API content blocks: one text block per part, cited ones with citations.
    fn anthropic_blocks(&self, body: &Value) -> Vec<(String, Vec<Value>)> {
        self.0
            .iter()
            .map(|part| match part {
                Part::Text(words) => (words.to_string(), Vec::new()),
                Part::Cited(words, cites) => (
                    words.to_string(),
                    cites
                        .iter()
                        .map(|cite| anthropic_citation(body, cite))
                        .collect(),
                ),
            })
            .collect()
    }

    /// A whole Messages API response.
    pub fn anthropic_message(&self, body: &Value) -> Value {
        let content: Vec<Value> = self
            .anthropic_blocks(body)
            .into_iter()
            .map(|(text, citations)| {
                if citations.is_empty() {
                    json!({"type": "text", "text": text})
                } else {
                    json!({"type": "text", "text": text, "citations": citations})
                }
            })
            .collect();
        anthropic_message(json!(content), "end_turn", 900, 40)
    }

    /// The SSE events of a streamed Messages API response.
    pub fn anthropic_events(&self, body: &Value) -> Vec<Value> {
        let mut events = vec![a_message_start(900)];
        for (index, (text, citations)) in self.anthropic_blocks(body).into_iter().enumerate() {
            events.push(a_block_start(index));
            for citation in citations {
                events.push(a_cite(index, citation));
            }
            for piece in halves(&text) {
                events.push(a_text(index, piece));
            }
            events.push(a_block_stop(index));
        }
        events.push(a_message_delta("end_turn", 40));
        events.push(a_message_stop());
        events
    }
}

/// `text` in two pieces (cut at a space near the middle), as a stream would deliver it.
fn halves(text: &str) -> Vec<&str> {
    let middle = text.len() / 2;
    match text[..middle].rfind(' ') {
        Some(cut) if cut > 0 => vec![&text[..cut], &text[cut..]],
        _ => vec![text],
    }
}

/// A `search_result_location` citation for `cite`, found in the request `body`.
fn anthropic_citation(body: &Value, cite: &Cite) -> Value {
    let (block, claimed) = match cite {
        Cite::Block(block) => (*block, *block),
        Cite::Claims { block, cited_text } => (*block, *cited_text),
        Cite::Unsent(index) => {
            return json!({
                "type": "search_result_location",
                "source": "mid-level-ds-mle-2026#not-sent",
                "title": "Not sent",
                "cited_text": "A passage that was never sent.",
                "search_result_index": index,
                "start_block_index": 0,
                "end_block_index": 1
            })
        }
    };
    let results: Vec<&Value> = current_turn(body)["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "search_result")
        .collect();
    for (index, result) in results.iter().enumerate() {
        let blocks = result["content"].as_array().into_iter().flatten();
        for (position, sent) in blocks.enumerate() {
            if sent["text"] == block {
                return json!({
                    "type": "search_result_location",
                    "source": result["source"],
                    "title": result["title"],
                    "cited_text": claimed,
                    "search_result_index": index,
                    "start_block_index": position,
                    "end_block_index": position + 1
                });
            }
        }
    }
    panic!("the script cites {block:?}, which the request did not send:\n{body:#}");
}

/// The request's last user message: the question being answered, with its passages (earlier
/// turns of a conversation come before it).
fn current_turn(body: &Value) -> &Value {
    body["messages"]
        .as_array()
        .and_then(|messages| {
            messages
                .iter()
                .rev()
                .find(|message| message["role"] == "user")
        })
        .unwrap_or(&Value::Null)
}

/// `(number, text)` of each numbered passage of an OpenAI-compatible request's current user turn.
fn openai_passages(body: &Value) -> Vec<(usize, String)> {
    let user = current_turn(body)["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let question_at = user.rfind("\n\nQuestion: ").unwrap_or(user.len());
    let mut passages: Vec<(usize, String)> = Vec::new();
    for chunk in user[..question_at].split("\n\n") {
        let Some(rest) = chunk.strip_prefix('[') else {
            if let Some(last) = passages.last_mut() {
                last.1.push_str("\n\n");
                last.1.push_str(chunk);
            }
            continue;
        };
        let number = rest
            .split(']')
            .next()
            .and_then(|digits| digits.parse::<usize>().ok());
        match number {
            Some(number) => passages.push((number, chunk.to_string())),
            None => {
                if let Some(last) = passages.last_mut() {
                    last.1.push_str("\n\n");
                    last.1.push_str(chunk);
                }
            }
        }
    }
    passages
}

fn openai_number(passages: &[(usize, String)], block: &str) -> usize {
    passages
        .iter()
        .find(|(_, text)| text.lines().skip(1).any(|line| line.contains(block)))
        .map(|(number, _)| *number)
        .unwrap_or_else(|| panic!("the script cites {block:?}, which the request did not send"))
}

/// The Google row of the bundled guide's pay table, as sent and as quoted.
pub const GOOGLE_ROW: &str = "Google MLE | L4 | $170k–$220k | $300k–$430k";

/// The Meta row of the same table, as sent and as quoted.
pub const META_ROW: &str = "Meta DS | E4 | $170k–$220k | $300k–$420k";

/// An answer to "whats the TC for a google L4 MLE?" whose second sentence states a figure the
/// cited row does not hold: the checks keep the first sentence only.
pub fn one_unsupported_sentence() -> Script {
    Script(vec![
        Part::Cited(
            "Google L4 MLE total comp is $300k–$430k",
            vec![Cite::Block(GOOGLE_ROW)],
        ),
        Part::Text(". "),
        Part::Cited(
            "Offers add a $900k signing bonus",
            vec![Cite::Block(GOOGLE_ROW)],
        ),
        Part::Text("."),
    ])
}

/// What the reader sees of [`one_unsupported_sentence`] once checked.
pub const CHECKED_TEXT: &str = "Google L4 MLE total comp is $300k–$430k [1].";
