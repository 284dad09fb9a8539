//! guidebot: answers questions about the hub's career guides, with citations, in Discord and on the CLI.
//!
//! The core (corpus, search, comp, answer, llm, engine) speaks plain Rust types; only `bot` and
//! `transport` know Discord, and only `cli` knows the terminal. See ARCHITECTURE.md.

pub mod corpus;
pub mod llm;
