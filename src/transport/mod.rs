//! Transports: how Discord reaches the bot. Each one turns Discord traffic into calls of the one
//! [`crate::bot::Dispatcher`] and holds no command logic of its own.
//!
//! - [`gateway`]: a serenity client over Discord's websocket gateway (sharded), the usual mode.
//! - [`http`]: the signed HTTP interactions endpoint (axum), stateless and horizontally scalable.

pub mod gateway;
pub mod http;
