//! Shared test support: fake Discord (REST + gateway), fake LLM servers, and validators for the
//! payloads the bot sends against Discord's and OpenAI's OpenAPI specs.
//!
//! Each integration test binary uses a different part of it, hence the dead-code allowance.
#![allow(dead_code)]

pub mod discord_spec;
pub mod fake_discord;
pub mod fake_llm;
pub mod openai_spec;
pub mod postgres;
pub mod setup;
