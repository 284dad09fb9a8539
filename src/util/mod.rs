//! Floor 0: small helpers every layer may use, importing nothing of the crate. Each exists once
//! here so no module grows its own variant: one [`text::truncate`] and [`text::non_empty`], one
//! clock ([`clock`]), one secret type ([`secret::Secret`]) read from a variable or a `*_FILE`
//! ([`secret::from_env`]), one way to name a TOML line ([`toml::line_of`]), and the general
//! readers of typed-in values with the text they read back ([`parse`]).

pub mod clock;
pub mod parse;
pub mod secret;
pub mod text;
pub mod toml;
