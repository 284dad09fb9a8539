//! How Discord reaches the bot: the HTTP interactions endpoint (and the gateway).

pub mod http;
