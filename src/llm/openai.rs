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
    dedupe_citations, sse::SseEvent, temperature_json, LlmCitation, LlmCompletion, LlmError,
    LlmEvent, LlmRequest, LlmSettings, PromptPassage, TokenUsage,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::VecDeque;

/// The user turn: numbered passages, a blank line between each, then `Question: <question>`.
pub(crate) fn user_message(request: &LlmRequest) -> String {
    let mut out = String::new();
    for p in &request.passages {
        out.push_str(&format!(
            "[{}] {} ({})\n{}\n\n",
            p.number, p.title, p.source, p.text
        ));
    }
    out.push_str("Question: ");
    out.push_str(&request.question);
    out
}

/// The JSON body of `POST /v1/chat/completions`. The system message is omitted when the prompt is
/// empty; `temperature` when `None`; `stream` and `stream_options.include_usage` only when streaming.
pub(crate) fn request_body(settings: &LlmSettings, request: &LlmRequest, stream: bool) -> Value {
    let mut messages = Vec::new();
    if !request.system_prompt.is_empty() {
        messages.push(json!({"role": "system", "content": request.system_prompt}));
    }
    messages.push(json!({"role": "user", "content": user_message(request)}));
    let mut body = json!({
        "model": settings.model,
        "messages": messages,
        "max_tokens": settings.max_tokens,
    });
    if let Some(t) = settings.temperature {
        body["temperature"] = temperature_json(t);
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
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> Self {
        TokenUsage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

/// Parses a non-streamed response body (first choice) into a completion.
pub(crate) fn parse_response(
    body: &str,
    passages: &[PromptPassage],
) -> Result<LlmCompletion, LlmError> {
    let response: ChatResponse = serde_json::from_str(body)
        .map_err(|e| LlmError::Malformed(format!("chat completion: {e}")))?;
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
    Ok(LlmCompletion {
        citations: citations_from_markers(&text, &numbers),
        text,
        usage: response.usage.unwrap_or_default().into(),
        stop_reason: choice.finish_reason,
    })
}

/// Citations from `[n]`, `[1][2]` and `[1, 2]` markers, keeping only numbers of request passages,
/// in order of first appearance.
pub(crate) fn citations_from_markers(text: &str, valid: &[usize]) -> Vec<LlmCitation> {
    let cited = marker_numbers(text)
        .into_iter()
        .filter(|n| valid.contains(n))
        .map(|n| LlmCitation {
            passage_number: n,
            cited_text: None,
        })
        .collect();
    dedupe_citations(cited)
}

/// Every number inside bracket markers made only of digits, commas and spaces (`[3]`, `[1, 2]`).
fn marker_numbers(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        let inside = &rest[..close];
        let parts: Vec<&str> = inside.split(',').map(str::trim).collect();
        let numbers: Option<Vec<usize>> = parts
            .iter()
            .map(|p| {
                if !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()) {
                    p.parse().ok()
                } else {
                    None
                }
            })
            .collect();
        if let Some(numbers) = numbers {
            out.extend(numbers);
            rest = &rest[close + 1..];
        }
    }
    out
}

/// Streaming parser for `data: {chunk}` lines ending with `data: [DONE]`.
pub(crate) struct StreamState {
    numbers: Vec<usize>,
    text: String,
    usage: TokenUsage,
    stop_reason: Option<String>,
    done: bool,
}

impl StreamState {
    /// A parser for a request whose passages have these numbers.
    pub(crate) fn new(numbers: Vec<usize>) -> Self {
        StreamState {
            numbers,
            text: String::new(),
            usage: TokenUsage::default(),
            stop_reason: None,
            done: false,
        }
    }

    /// True once `Done` was emitted.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    fn finish(&mut self, out: &mut VecDeque<LlmEvent>) {
        self.done = true;
        let text = std::mem::take(&mut self.text);
        out.push_back(LlmEvent::Done(LlmCompletion {
            citations: citations_from_markers(&text, &self.numbers),
            text,
            usage: self.usage,
            stop_reason: self.stop_reason.take(),
        }));
    }

    /// Handles one SSE event.
    pub(crate) fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<LlmEvent>,
    ) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| LlmError::Malformed(format!("stream chunk: {e}")))?;
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
            self.usage = usage.into();
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
                self.stop_reason = Some(reason.to_string());
            }
        }
        Ok(())
    }

    /// The body ended: completes leniently if a finish reason arrived (servers that omit
    /// `[DONE]`), otherwise the stream broke off.
    pub(crate) fn on_end(&mut self, out: &mut VecDeque<LlmEvent>) -> Result<(), LlmError> {
        if self.done {
            Ok(())
        } else if self.stop_reason.is_some() {
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
    fn user_message_format() {
        let request = LlmRequest {
            system_prompt: "s".into(),
            question: "How much?".into(),
            passages: vec![PromptPassage {
                number: 1,
                source: "g#a".into(),
                title: "A".into(),
                text: "alpha".into(),
            }],
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
