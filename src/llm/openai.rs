//! OpenAI-compatible Chat Completions (OpenAI, vLLM, Ollama, llama.cpp, TGI): passages are numbered
//! in the user turn and the answer's `[n]` markers are parsed back into citations.
//!
//! User message format (the system prompt should tell the model to cite with `[n]`):
//!
//! ```text
//! [1] <title> (<source>)
//! <text>
//!
//! [2] <title> (<source>)
//! <text>
//!
//! Question: <question>
//! ```

use super::{
    dedupe_citations, sse::SseEvent, temperature_json, AnswerPiece, LlmCitation, LlmCompletion,
    LlmError, LlmEvent, LlmRequest, LlmSettings, PromptPassage, StreamProgress, TokenUsage,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;

/// The user turn: numbered passages, a blank line between each, then `Question: <question>`.
pub(crate) fn user_message(request: &LlmRequest) -> String {
    let mut out = if request.cache_passages {
        String::new()
    } else {
        numbered_passages(request)
    };
    out.push_str("Question: ");
    out.push_str(&request.question);
    out
}

/// The passages as `[n] title (source)` and their text, one after another.
fn numbered_passages(request: &LlmRequest) -> String {
    let mut out = String::new();
    for p in &request.passages {
        out.push_str(&format!(
            "[{}] {} ({})\n{}\n\n",
            p.number, p.title, p.source, p.text
        ));
    }
    out
}

/// The JSON body of `POST /v1/chat/completions`. The system message is omitted when the prompt is
/// empty; `temperature` when `None`; `stream` and `stream_options.include_usage` only when
/// streaming. For reasoning models (`LlmSettings::reasoning_model`) the token limit is sent as
/// `max_completion_tokens` and `temperature` is omitted, as those models reject both.
pub(crate) fn request_body(settings: &LlmSettings, request: &LlmRequest, stream: bool) -> Value {
    let mut messages = Vec::new();
    if request.cache_passages {
        // The whole guide, numbered the same for every question, right after the instructions:
        // a stable prefix OpenAI-compatible servers cache.
        messages.push(json!({
            "role": "system",
            "content": format!("{}\n\nPassages:\n\n{}", request.system_prompt, numbered_passages(request)),
        }));
    } else if !request.system_prompt.is_empty() {
        messages.push(json!({"role": "system", "content": request.system_prompt}));
    }
    messages.extend(super::HistoryTurn::messages(&request.history));
    messages.push(json!({"role": "user", "content": user_message(request)}));
    let mut body = json!({
        "model": settings.model,
        "messages": messages,
    });
    if settings.reasoning_model {
        body["max_completion_tokens"] = json!(settings.max_tokens);
    } else {
        body["max_tokens"] = json!(settings.max_tokens);
        if let Some(t) = settings.temperature {
            body["temperature"] = temperature_json(t);
        }
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

/// `usage.prompt_tokens_details`: how much of the prompt came from the cache.
#[derive(Deserialize, Default, Clone, Copy)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> Self {
        TokenUsage {
            input_tokens: u.prompt_tokens,
            cached_input_tokens: u
                .prompt_tokens_details
                .and_then(|details| details.cached_tokens)
                .unwrap_or(0),
            output_tokens: u.completion_tokens,
        }
    }
}

/// Parses a non-streamed response body (first choice) into a completion.
pub(crate) fn parse_response(
    body: &str,
    passages: &[PromptPassage],
) -> Result<LlmCompletion, LlmError> {
    let response: ChatResponse = super::from_json(body, "chat completion")?;
    let choice = response
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::Malformed("chat completion without choices".to_string()))?;
    let text = choice
        .message
        .content
        .or(choice.message.refusal)
        .unwrap_or_default();
    let numbers: Vec<usize> = passages.iter().map(|p| p.number).collect();
    Ok(completion(
        text,
        &numbers,
        response.usage.unwrap_or_default().into(),
        choice.finish_reason,
    ))
}

/// A completion from the answer's text: citations and pieces read from its `[n]` markers.
fn completion(
    text: String,
    numbers: &[usize],
    usage: TokenUsage,
    stop_reason: Option<String>,
) -> LlmCompletion {
    let (pieces, unknown_citations) = pieces_from_markers(&text, numbers);
    LlmCompletion {
        citations: citations_from_markers(&text, numbers),
        pieces,
        unknown_citations,
        text,
        usage,
        stop_reason,
    }
}

/// Citations from `[n]`, `[1][2]` and `[1, 2]` markers, keeping only numbers of request passages,
/// in order of first appearance.
pub(crate) fn citations_from_markers(text: &str, valid: &[usize]) -> Vec<LlmCitation> {
    let cited = markers(text)
        .into_iter()
        .flat_map(|(_, numbers)| numbers)
        .filter(|n| valid.contains(n))
        .map(LlmCitation::marker)
        .collect();
    dedupe_citations(cited)
}

/// The text cut at its markers: text pieces, and one marker piece per bracket holding the
/// citations of request passages (numbers of passages that were not sent are counted, not kept).
pub(crate) fn pieces_from_markers(text: &str, valid: &[usize]) -> (Vec<AnswerPiece>, usize) {
    let mut pieces = Vec::new();
    let mut unknown = 0;
    let mut from = 0;
    for (range, numbers) in markers(text) {
        if range.start > from {
            pieces.push(AnswerPiece::Text(text[from..range.start].to_string()));
        }
        let mut cites = Vec::new();
        for n in numbers {
            if valid.contains(&n) {
                cites.push(LlmCitation::marker(n));
            } else {
                unknown += 1;
            }
        }
        pieces.push(AnswerPiece::Marker(cites));
        from = range.end;
    }
    if from < text.len() {
        pieces.push(AnswerPiece::Text(text[from..].to_string()));
    }
    (pieces, unknown)
}

/// Every bracket made only of numbers, commas and spaces (`[3]`, `[1, 2]`), with its byte range.
fn markers(text: &str) -> Vec<(std::ops::Range<usize>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(open) = text[at..].find('[').map(|i| at + i) {
        let Some(close) = text[open + 1..].find(']').map(|i| open + 1 + i) else {
            break;
        };
        let inside = &text[open + 1..close];
        let numbers: Option<Vec<usize>> = inside
            .split(',')
            .map(str::trim)
            .map(|p| {
                if !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse().ok()
                } else {
                    None
                }
            })
            .collect();
        match numbers {
            Some(numbers) => {
                out.push((open..close + 1, numbers));
                at = close + 1;
            }
            None => at = open + 1,
        }
    }
    out
}

/// Every number inside bracket markers, in order (tests).
#[cfg(test)]
fn marker_numbers(text: &str) -> Vec<usize> {
    markers(text).into_iter().flat_map(|(_, n)| n).collect()
}

/// Streaming parser for `data: {chunk}` lines ending with `data: [DONE]`.
pub(crate) struct StreamState {
    pub(crate) progress: StreamProgress,
    text: String,
}

impl StreamState {
    /// A parser for a request whose passages have these numbers.
    pub(crate) fn new(numbers: Vec<usize>) -> Self {
        StreamState {
            progress: StreamProgress::new(numbers),
            text: String::new(),
        }
    }

    fn finish(&mut self, out: &mut VecDeque<LlmEvent>) {
        let progress = &mut self.progress;
        progress.done = true;
        let text = std::mem::take(&mut self.text);
        let (usage, stop_reason) = (progress.usage, progress.stop_reason.take());
        out.push_back(LlmEvent::Done(completion(
            text,
            &progress.numbers,
            usage,
            stop_reason,
        )));
    }

    /// Handles one SSE event.
    pub(crate) fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<LlmEvent>,
    ) -> Result<(), LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Value = super::from_json(data, "stream chunk")?;
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| error.as_str())
                .unwrap_or("the server reported an error");
            return Err(LlmError::Stream(message.to_string()));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            let usage = Usage::deserialize(usage)
                .map_err(|e| LlmError::Malformed(format!("stream usage: {e}")))?;
            self.progress.usage = usage.into();
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        for choice in choices.into_iter().flatten() {
            if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(t) = choice.pointer("/delta/content").and_then(Value::as_str) {
                if !t.is_empty() {
                    self.text.push_str(t);
                    out.push_back(LlmEvent::TextDelta(t.to_string()));
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.progress.stop_reason = Some(reason.to_string());
            }
        }
        Ok(())
    }

    /// The body ended: completes leniently if a finish reason arrived (servers that omit
    /// `[DONE]`), otherwise the stream broke off.
    pub(crate) fn on_end(&mut self, out: &mut VecDeque<LlmEvent>) -> Result<(), LlmError> {
        if self.progress.stop_reason.is_some() {
            self.finish(out);
            Ok(())
        } else {
            Err(LlmError::Stream(
                "the stream ended before [DONE]".to_string(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_forms() {
        assert_eq!(
            marker_numbers("a [1] b [2][3] c [4, 5] d [6,7]"),
            vec![1, 2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            marker_numbers("[link](x) [a] [] [1 2] [, ] [12345] [2"),
            Vec::<usize>::new()
        );
        assert_eq!(marker_numbers("[[3]]"), vec![3]);
    }

    #[test]
    fn citations_keep_valid_numbers_once() {
        let c = citations_from_markers("x [2] y [9] z [2][1]", &[1, 2, 3]);
        let numbers: Vec<usize> = c.iter().map(|c| c.passage_number).collect();
        assert_eq!(numbers, vec![2, 1]);
        assert!(c.iter().all(|c| c.cited_text.is_none()));
    }

    #[test]
    fn pieces_split_at_markers() {
        let (pieces, unknown) = pieces_from_markers("A [1]. B [9][2]. [x] C", &[1, 2]);
        assert_eq!(
            pieces,
            vec![
                AnswerPiece::Text("A ".into()),
                AnswerPiece::Marker(vec![LlmCitation::marker(1)]),
                AnswerPiece::Text(". B ".into()),
                AnswerPiece::Marker(vec![]),
                AnswerPiece::Marker(vec![LlmCitation::marker(2)]),
                AnswerPiece::Text(". [x] C".into()),
            ]
        );
        assert_eq!(unknown, 1);
    }

    #[test]
    fn user_message_format() {
        let request = LlmRequest {
            system_prompt: "s".into(),
            question: "How much?".into(),
            passages: vec![PromptPassage {
                number: 1,
                source: "g#a".into(),
                title: "A".into(),
                text: "alpha".into(),
                blocks: vec!["alpha".into()],
            }],
            history: Vec::new(),
            cache_passages: false,
        };
        assert_eq!(
            user_message(&request),
            "[1] A (g#a)\nalpha\n\nQuestion: How much?"
        );
    }

    #[test]
    fn refusal_and_malformed() {
        let c = parse_response(
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"no"},"finish_reason":"stop"}]}"#,
            &[],
        )
        .unwrap();
        assert_eq!(c.text, "no");
        assert!(matches!(
            parse_response(r#"{"choices":[]}"#, &[]),
            Err(LlmError::Malformed(_))
        ));
        assert!(matches!(
            parse_response("<html>", &[]),
            Err(LlmError::Malformed(_))
        ));
    }
}
