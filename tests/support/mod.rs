//! Shared test support: a fake Discord (REST + gateway) and validation against Discord's OpenAPI spec.

pub mod discord_spec;
pub mod fake_discord;
