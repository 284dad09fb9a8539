//! The Discord-facing layer shared by both transports: slash command definitions, interaction →
//! plain request, the dispatcher that calls the engine, and rendering within Discord's limits.
//!
//! Invariant: the gateway (serenity client) and the HTTP interactions endpoint both go through
//! [`dispatch::Dispatcher::run_interaction`] with a [`dispatch::Responder`]; neither holds command
//! logic of its own.

pub mod commands;
pub mod dispatch;
pub mod render;
pub mod request;

pub use dispatch::{
    BotSettings, Dispatcher, InteractionObserver, InteractionReport, NoObserver, Responder,
};
pub use request::{BotRequest, Invocation};
