//! guidebot: answers questions about the hub's career guides, with citations, in Discord and on the CLI.
//!
//! The core (corpus, search, comp, answer, llm, engine) speaks plain Rust types; only `bot` and
//! `transport` know Discord, and only `cli` knows the terminal. See ARCHITECTURE.md.
//!
//! `synthetic` exists only for benchmarks and load tests: it writes large corpora derived from the guide.

pub mod answer;
pub mod bot;
pub mod cli;
pub mod comp;
pub mod config;
pub mod corpus;
pub mod engine;
pub mod eval;
pub mod llm;
pub mod metrics;
pub mod reload;
pub mod search;
pub mod serve;
pub mod store;
pub mod synthetic;
pub mod telemetry;
pub mod transport;
pub mod util;
