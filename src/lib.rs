//! guidebot: answers questions about the hub's career guides, with citations, in Discord and on the CLI.
//!
//! The core (corpus, search, comp, answer, llm, engine) speaks plain Rust types; only `bot` and
//! `transport` know Discord, and only `cli` knows the terminal. See ARCHITECTURE.md.

pub mod answer;
pub mod bot;
pub mod cli;
pub mod comp;
pub mod corpus;
pub mod engine;
pub mod eval;
pub mod llm;
pub mod metrics;
pub mod search;
pub mod telemetry;
pub mod transport;
