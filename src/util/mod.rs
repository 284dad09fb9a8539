//! Floor 0: small helpers every layer may use, importing nothing of the crate. Each exists once
//! here so no module grows its own variant: one [`text::truncate`], one clock ([`clock`]), one
//! secret type ([`secret::Secret`]), one way to name a TOML line ([`toml::line_of`]), and the general readers of typed-in values
//! ([`parse`]).

pub mod clock;
pub mod parse;
pub mod secret;
pub mod text;
pub mod toml;
