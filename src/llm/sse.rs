//! Server-sent events over a reqwest response body, with transport errors mapped to [`LlmError`].

use super::{error_chain, LlmError};
use eventsource_stream::{EventStreamError, Eventsource};
use futures::stream::{BoxStream, StreamExt};

/// One SSE event (`event:` name, defaulting to `message`, and the joined `data:` lines).
pub(crate) type SseEvent = eventsource_stream::Event;

/// The parsed event stream of a response body.
pub(crate) type SseStream = BoxStream<'static, Result<SseEvent, LlmError>>;

/// Parses `response`'s body as SSE. A body that breaks off becomes [`LlmError::Stream`] (or
/// [`LlmError::Timeout`] when reqwest timed out); bytes that are not SSE become [`LlmError::Malformed`].
pub(crate) fn events(response: reqwest::Response) -> SseStream {
    response
        .bytes_stream()
        .eventsource()
        .map(|item| item.map_err(map_error))
        .boxed()
}

fn map_error(e: EventStreamError<reqwest::Error>) -> LlmError {
    match e {
        EventStreamError::Transport(e) if e.is_timeout() => LlmError::Timeout,
        EventStreamError::Transport(e) => LlmError::Stream(error_chain(&e)),
        EventStreamError::Utf8(e) => LlmError::Malformed(format!("stream is not UTF-8: {e}")),
        EventStreamError::Parser(e) => LlmError::Malformed(format!("stream is not valid SSE: {e}")),
    }
}
