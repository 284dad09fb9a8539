//! Floor 0: small helpers every layer may use, importing nothing of the crate. Each exists once
//! here so no module grows its own variant: one [`text::truncate`], one clock ([`clock`]), one
//! secret type ([`secret::Secret`]).

pub mod clock;
pub mod secret;
pub mod text;
