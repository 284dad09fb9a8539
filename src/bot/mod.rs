//! The Discord-facing layer shared by both transports: slash command definitions, interaction →
//! plain request, the dispatcher that calls the engine, typed reports, and rendering within
//! Discord's limits.
//!
//! Invariant: gateway interactions, mentions and the HTTP interactions endpoint all go through
//! [`dispatch::Dispatcher::run_interaction`] with a [`dispatch::Responder`]; no transport holds
//! command logic of its own.

pub mod admin;
pub mod commands;
pub mod conversation;
pub mod dispatch;
pub mod render;
pub mod report;
pub mod request;

pub use dispatch::{BotSettings, DispatchError, Dispatcher, ReplayCheck, Responder};
pub use render::Reply;
pub use report::{Command, InteractionObserver, InteractionReport, NoObserver, Outcome};
pub use request::{BotRequest, Invocation};
