//! Anthropic Messages API: passages go in as `search_result` blocks with citations enabled, and the
//! answer's native `search_result_location` citations come back as ` [n]` markers plus cited text.

use super::{
    dedupe_citations, sse::SseEvent, temperature_json, AnswerPiece, LlmCitation, LlmCompletion,
    LlmError, LlmEvent, LlmRequest, LlmSettings, PromptPassage, StreamProgress, TokenUsage,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};

/// Value of the `anthropic-version` header.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// The JSON body of `POST /v1/messages`: one `search_result` block per passage (in passage order,
/// so `search_result_index` i is `passages[i]`) whose `content` holds one text block per citable
/// piece (sentence, list item, table row), then the question as a `text` block. The system prompt
/// is omitted when empty, `temperature` when `None`, `stream` unless streaming.
pub(crate) fn request_body(settings: &LlmSettings, request: &LlmRequest, stream: bool) -> Value {
    let mut content: Vec<Value> = request
        .passages
        .iter()
        .map(|p| {
            let blocks: Vec<Value> = p
                .sent_blocks()
                .into_iter()
                .map(|text| json!({"type": "text", "text": text}))
                .collect();
            json!({
                "type": "search_result",
                "source": p.source,
                "title": p.title,
                "content": blocks,
                "citations": {"enabled": true},
            })
        })
        .collect();
    if request.cache_passages {
        // Everything up to and including this block is the same for every question: cached.
        if let Some(last) = content.last_mut() {
            last["cache_control"] = json!({"type": "ephemeral"});
        }
    }
    content.push(json!({"type": "text", "text": request.question}));

    let mut messages = super::HistoryTurn::messages(&request.history);
    messages.push(json!({"role": "user", "content": content}));
    let mut body = json!({
        "model": settings.model,
        "max_tokens": settings.max_tokens,
        "messages": messages,
    });
    if let Some(t) = settings.temperature {
        body["temperature"] = temperature_json(t);
    }
    if !request.system_prompt.is_empty() {
        body["system"] = json!(request.system_prompt);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

#[derive(Deserialize)]
struct MessageResponse {
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ContentBlock {
    #[serde(rename = "text")]
    Text {
        text: String,
        #[serde(default)]
        citations: Option<Vec<Citation>>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Clone)]
struct Citation {
    #[serde(default)]
    search_result_index: Option<usize>,
    #[serde(default)]
    cited_text: Option<String>,
    #[serde(default)]
    start_block_index: Option<usize>,
    #[serde(default)]
    end_block_index: Option<usize>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    /// Prompt tokens read from the cache (not counted in `input_tokens`).
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    /// Prompt tokens written to the cache (not counted in `input_tokens`).
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

/// Parses a non-streamed response body into a completion.
pub(crate) fn parse_response(
    body: &str,
    passages: &[PromptPassage],
) -> Result<LlmCompletion, LlmError> {
    let response: MessageResponse = super::from_json(body, "messages response")?;
    let numbers: Vec<usize> = passages.iter().map(|p| p.number).collect();
    let mut answer = Assembled::default();
    for block in response.content {
        if let ContentBlock::Text { text, citations } = block {
            let mut block = BlockState {
                text,
                ..BlockState::default()
            };
            for c in citations.unwrap_or_default() {
                block.cite(&c, &numbers);
            }
            answer.text.push_str(&block.text);
            let marker = answer.close(block);
            answer.text.push_str(&marker);
        }
    }
    let usage = response.usage.unwrap_or_default();
    Ok(answer.finish(
        TokenUsage {
            input_tokens: usage.input_tokens.unwrap_or(0)
                + usage.cache_read_input_tokens.unwrap_or(0)
                + usage.cache_creation_input_tokens.unwrap_or(0),
            cached_input_tokens: usage.cache_read_input_tokens.unwrap_or(0),
            output_tokens: usage.output_tokens.unwrap_or(0),
        },
        response.stop_reason,
    ))
}

/// The citation mapped to the request's passage numbers; `None` for a search result that was not
/// sent (or a citation of another kind).
fn map_citation(c: &Citation, numbers: &[usize]) -> Option<LlmCitation> {
    let index = c.search_result_index?;
    let Some(&number) = numbers.get(index) else {
        tracing::debug!(
            index,
            passages = numbers.len(),
            "ignoring citation of an unknown search result"
        );
        return None;
    };
    let blocks = match (c.start_block_index, c.end_block_index) {
        (Some(start), Some(end)) => Some(start..end),
        _ => None,
    };
    Some(LlmCitation {
        passage_number: number,
        cited_text: c.cited_text.clone(),
        blocks,
    })
}

/// ` [1][3]` for the distinct passage numbers cited by one block, in order; empty when none.
fn marker(citations: &[LlmCitation]) -> String {
    let mut seen = Vec::new();
    for c in citations {
        if !seen.contains(&c.passage_number) {
            seen.push(c.passage_number);
        }
    }
    if seen.is_empty() {
        return String::new();
    }
    let mut out = String::from(" ");
    for n in seen {
        out.push_str(&format!("[{n}]"));
    }
    out
}

/// One text block of the answer: its text and its citations of sent passages.
#[derive(Default)]
struct BlockState {
    text: String,
    citations: Vec<LlmCitation>,
    /// Citations of search results that were not sent.
    unknown: usize,
}

impl BlockState {
    fn cite(&mut self, c: &Citation, numbers: &[usize]) {
        match map_citation(c, numbers) {
            Some(citation) => self.citations.push(citation),
            None => self.unknown += 1,
        }
    }
}

/// The answer put together block by block (both for whole responses and streams).
#[derive(Default)]
struct Assembled {
    /// Text with ` [n]` markers after cited blocks.
    text: String,
    citations: Vec<LlmCitation>,
    pieces: Vec<AnswerPiece>,
    unknown: usize,
}

impl Assembled {
    /// Adds a finished block (whose text is already in `self.text` when streaming) and returns
    /// the marker that follows it.
    fn close(&mut self, block: BlockState) -> String {
        let marker = marker(&block.citations);
        self.unknown += block.unknown;
        self.citations.extend(block.citations.iter().cloned());
        if block.citations.is_empty() {
            self.pieces.push(AnswerPiece::Text(block.text));
        } else {
            self.pieces.push(AnswerPiece::Cited {
                text: block.text,
                citations: block.citations,
            });
        }
        marker
    }

    fn finish(self, usage: TokenUsage, stop_reason: Option<String>) -> LlmCompletion {
        LlmCompletion {
            text: self.text,
            citations: dedupe_citations(self.citations),
            pieces: self.pieces,
            unknown_citations: self.unknown,
            usage,
            stop_reason,
        }
    }
}

/// Streaming parser for Anthropic SSE events.
pub(crate) struct StreamState {
    pub(crate) progress: StreamProgress,
    answer: Assembled,
    blocks: BTreeMap<u64, BlockState>,
}

impl StreamState {
    /// A parser for a request whose passages have these numbers, in request order.
    pub(crate) fn new(numbers: Vec<usize>) -> Self {
        StreamState {
            progress: StreamProgress::new(numbers),
            answer: Assembled::default(),
            blocks: BTreeMap::new(),
        }
    }

    fn emit(&mut self, text: &str, out: &mut VecDeque<LlmEvent>) {
        if !text.is_empty() {
            self.answer.text.push_str(text);
            out.push_back(LlmEvent::TextDelta(text.to_string()));
        }
    }

    fn block_text(&mut self, index: u64, text: &str, out: &mut VecDeque<LlmEvent>) {
        if let Some(block) = self.blocks.get_mut(&index) {
            block.text.push_str(text);
        }
        self.emit(text, out);
    }

    fn cite(&mut self, index: u64, value: &Value) {
        let Ok(c) = Citation::deserialize(value) else {
            tracing::debug!("ignoring a citation of an unknown shape");
            return;
        };
        if let Some(block) = self.blocks.get_mut(&index) {
            block.cite(&c, &self.progress.numbers);
        }
    }

    /// Handles one SSE event.
    pub(crate) fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<LlmEvent>,
    ) -> Result<(), LlmError> {
        let what = format_args!("stream event {:?}", event.event);
        let data: Value = super::from_json(&event.data, what)?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(event.event.as_str())
            .to_string();
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "message_start" => {
                if let Some(u) = data.pointer("/message/usage") {
                    self.update_usage(u);
                }
            }
            "content_block_start" => {
                let block = data.get("content_block").cloned().unwrap_or(Value::Null);
                if block.get("type").and_then(Value::as_str) == Some("text") {
                    self.blocks.insert(index, BlockState::default());
                    if let Some(t) = block.get("text").and_then(Value::as_str) {
                        self.block_text(index, t, out);
                    }
                    if let Some(cites) = block.get("citations").and_then(Value::as_array) {
                        for c in cites {
                            self.cite(index, c);
                        }
                    }
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").cloned().unwrap_or(Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let t = delta.get("text").and_then(Value::as_str).ok_or_else(|| {
                            LlmError::Malformed("text_delta without text".to_string())
                        })?;
                        self.block_text(index, t, out);
                    }
                    Some("citations_delta") => {
                        if let Some(c) = delta.get("citation") {
                            self.cite(index, c);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(block) = self.blocks.remove(&index) {
                    let m = self.answer.close(block);
                    self.emit(&m, out);
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.progress.stop_reason = Some(reason.to_string());
                }
                if let Some(u) = data.get("usage") {
                    self.update_usage(u);
                }
            }
            "message_stop" => {
                self.progress.done = true;
                // Blocks never stopped still count, in order.
                for (_, block) in std::mem::take(&mut self.blocks) {
                    let m = self.answer.close(block);
                    self.emit(&m, out);
                }
                let answer = std::mem::take(&mut self.answer);
                out.push_back(LlmEvent::Done(
                    answer.finish(self.progress.usage, self.progress.stop_reason.take()),
                ));
            }
            "error" => {
                let kind = data
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let message = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the provider reported an error");
                return Err(LlmError::Stream(format!("{kind}: {message}")));
            }
            _ => {} // ping and future event types
        }
        Ok(())
    }

    fn update_usage(&mut self, usage: &Value) {
        let read = |key: &str| usage.get(key).and_then(Value::as_u64);
        if let Some(n) = read("input_tokens") {
            // Anthropic counts cached prompt tokens apart; the total is what was read.
            let total = n
                + read("cache_read_input_tokens").unwrap_or(0)
                + read("cache_creation_input_tokens").unwrap_or(0);
            if total > 0 {
                self.progress.usage.input_tokens = total;
            }
        }
        if let Some(n) = read("cache_read_input_tokens") {
            if n > 0 {
                self.progress.usage.cached_input_tokens = n;
            }
        }
        if let Some(n) = usage.get("output_tokens").and_then(Value::as_u64) {
            self.progress.usage.output_tokens = n;
        }
    }

    /// The body ended before `message_stop` (after it, the parser is not asked).
    pub(crate) fn on_end(&mut self, _out: &mut VecDeque<LlmEvent>) -> Result<(), LlmError> {
        let message = "the stream ended before message_stop";
        Err(LlmError::Stream(message.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passages() -> Vec<PromptPassage> {
        (1..=3)
            .map(|n| PromptPassage {
                number: n,
                source: format!("guide#s{n}"),
                title: format!("Section {n}"),
                text: format!("text {n}"),
                blocks: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn markers_are_deduped_per_block() {
        assert_eq!(marker(&[]), "");
        let cites: Vec<LlmCitation> = [2, 2, 1].into_iter().map(LlmCitation::marker).collect();
        assert_eq!(marker(&cites), " [2][1]");
    }

    #[test]
    fn parses_cited_blocks() {
        let body = r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[
            {"type":"text","text":"Mid-level bands are "},
            {"type":"text","text":"$150k to $190k","citations":[
                {"type":"search_result_location","source":"guide#s2","title":"Section 2","cited_text":"text 2","search_result_index":1,"start_block_index":0,"end_block_index":1},
                {"type":"search_result_location","source":"guide#s2","title":"Section 2","cited_text":"text 2","search_result_index":1,"start_block_index":0,"end_block_index":1},
                {"type":"search_result_location","cited_text":"nope","search_result_index":9,"start_block_index":0,"end_block_index":1}]},
            {"type":"thinking","thinking":"hidden"},
            {"type":"text","text":"."}],
            "stop_reason":"end_turn","usage":{"input_tokens":120,"output_tokens":30}}"#;
        let c = parse_response(body, &passages()).unwrap();
        assert_eq!(c.text, "Mid-level bands are $150k to $190k [2].");
        let cited = LlmCitation {
            passage_number: 2,
            cited_text: Some("text 2".into()),
            blocks: Some(0..1),
        };
        assert_eq!(c.citations, vec![cited.clone()]);
        assert_eq!(
            c.pieces,
            vec![
                AnswerPiece::Text("Mid-level bands are ".into()),
                AnswerPiece::Cited {
                    text: "$150k to $190k".into(),
                    citations: vec![cited.clone(), cited]
                },
                AnswerPiece::Text(".".into()),
            ]
        );
        assert_eq!(c.unknown_citations, 1);
        assert_eq!(
            c.usage,
            TokenUsage {
                cached_input_tokens: 0,
                input_tokens: 120,
                output_tokens: 30
            }
        );
        assert_eq!(c.stop_reason.as_deref(), Some("end_turn"));
    }

    #[test]
    fn every_piece_is_a_text_block() {
        let mut passage = passages().remove(0);
        passage.blocks = vec!["One.".into(), "Two.".into()];
        let request = LlmRequest {
            system_prompt: String::new(),
            question: "q".into(),
            history: Vec::new(),
            cache_passages: false,
            passages: vec![passage],
        };
        let settings = LlmSettings::new(crate::llm::ProviderKind::Anthropic, "m");
        let body = request_body(&settings, &request, false);
        assert_eq!(
            body["messages"][0]["content"][0]["content"],
            json!([{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}])
        );
    }

    #[test]
    fn malformed_bodies() {
        assert!(matches!(
            parse_response("{not json", &passages()),
            Err(LlmError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(r#"{"type":"message"}"#, &passages()),
            Err(LlmError::Malformed(_))
        ));
    }
}
