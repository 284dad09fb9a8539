//! LLM provider settings: which provider, model and endpoint to use, with an API key that never
//! prints. The values come from `crate::config` (file, environment, flags); this module owns the
//! provider facts (default endpoints, temperature ceilings, which key variable applies) and the
//! rules that tie several settings together ([`LlmSettings::check`]).

use crate::util::secret::Secret;
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// Default Anthropic endpoint (the client appends `/v1/messages`).
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// Default OpenAI endpoint (the client appends `/v1/chat/completions`).
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com";
/// Default per-request timeout, so a stuck provider never holds a Discord interaction forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default answer length budget: enough for a short cited answer that fits a Discord message.
pub const DEFAULT_MAX_TOKENS: u32 = 700;
/// Default sampling temperature: low, because answers must stick to the quoted passages.
pub const DEFAULT_TEMPERATURE: f32 = 0.2;
/// Default number of retries after the first attempt (429, 5xx, 529, timeouts, connect errors).
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Upper bound accepted for `max_retries`, so a misconfiguration cannot make a user wait minutes.
pub const MAX_RETRIES_LIMIT: u32 = 10;
/// Upper bound accepted for the timeout, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 600.0;

/// Which wire protocol the client speaks; selects the request format, citations and streaming parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Anthropic Messages API with native `search_result` citations.
    Anthropic,
    /// OpenAI Chat Completions, or any compatible server (vLLM, Ollama, llama.cpp, TGI).
    OpenAi,
}

impl ProviderKind {
    /// Stable lowercase name, used in config files, logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
        }
    }

    /// The default base URL of this provider's public API.
    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => DEFAULT_ANTHROPIC_BASE_URL,
            ProviderKind::OpenAi => DEFAULT_OPENAI_BASE_URL,
        }
    }

    /// Highest temperature the provider accepts (Anthropic 1.0, OpenAI 2.0).
    pub fn max_temperature(self) -> f32 {
        match self {
            ProviderKind::Anthropic => 1.0,
            ProviderKind::OpenAi => 2.0,
        }
    }

    /// The provider-specific environment variable consulted when `GUIDEBOT_LLM_API_KEY` is unset.
    pub fn fallback_key_var(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            ProviderKind::OpenAi => "OPENAI_API_KEY",
        }
    }

    /// A model name to suggest when none is set.
    pub fn example_model(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "claude-sonnet-4-5",
            ProviderKind::OpenAi => "gpt-4.1-mini or llama3.1:8b",
        }
    }

    /// Reads `anthropic`, `openai` or `openai-compatible` (any case).
    pub fn parse(value: &str) -> Option<ProviderKind> {
        match value.trim().to_ascii_lowercase().as_str() {
            "anthropic" => Some(ProviderKind::Anthropic),
            "openai" | "openai-compatible" => Some(ProviderKind::OpenAi),
            _ => None,
        }
    }
}

/// Reads the `llm.provider` setting: `""` or `none` for no LLM, else a provider.
pub fn parse_provider(raw: &str) -> Result<Option<ProviderKind>, String> {
    if raw.is_empty() || raw.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    ProviderKind::parse(raw).map(Some).ok_or_else(|| {
        "use \"anthropic\", \"openai\" (any OpenAI-compatible server), or \"\" to run without an LLM"
            .into()
    })
}

/// Reads the `llm.temperature` setting: 0 to 2 (each provider's ceiling is checked by
/// [`LlmSettings::check`]), or `none` / `off` to omit it.
pub fn parse_temperature(raw: &str) -> Result<Option<f32>, String> {
    if raw.eq_ignore_ascii_case("none") || raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let fix =
        "use a number from 0 to 2 (at most 1 for anthropic), e.g. 0.2, or \"none\" to omit it";
    crate::util::parse::parsed(|t: &f32| (0.0..=2.0).contains(t), fix.into())(raw).map(Some)
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything needed to talk to one LLM provider. `Debug` masks the API key.
#[derive(Clone, Debug)]
pub struct LlmSettings {
    /// Which API the client speaks.
    pub provider: ProviderKind,
    /// Model name sent in every request, e.g. `claude-sonnet-4-5` or `llama3.1:8b`.
    pub model: String,
    /// Scheme, host and optional path prefix; the client appends `/v1/messages` or
    /// `/v1/chat/completions` (a base already ending in `/v1` is not doubled).
    pub base_url: String,
    /// Secret for the provider; `None` only makes sense for local OpenAI-compatible servers.
    pub api_key: Option<Secret>,
    /// Per-request time limit (whole response for `complete`; headers and each gap between chunks
    /// for `stream`).
    pub timeout: Duration,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; `None` omits the field (for models that reject it).
    pub temperature: Option<f32>,
    /// Retries after the first attempt on 429, 5xx, 529, timeouts and connect errors.
    pub max_retries: u32,
    /// An OpenAI reasoning model (o1, o3, o4-mini, gpt-5 ...): they reject `max_tokens` and
    /// `temperature`, so the limit goes as `max_completion_tokens` and no temperature is sent.
    /// OpenAI-compatible servers such as vLLM and Ollama take `max_tokens`: leave it off.
    pub reasoning_model: bool,
    /// When the whole corpus fits in this many (estimated) tokens, every passage is sent in
    /// document order, marked for the provider's prompt cache, instead of the top hits; 0 = always
    /// the top hits.
    pub whole_guide_tokens: u64,
}

impl LlmSettings {
    /// Settings with every default filled in for `provider` and `model`, no key.
    pub fn new(provider: ProviderKind, model: impl Into<String>) -> Self {
        LlmSettings {
            provider,
            model: model.into(),
            base_url: provider.default_base_url().to_string(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: Some(DEFAULT_TEMPERATURE),
            max_retries: DEFAULT_MAX_RETRIES,
            reasoning_model: false,
            whole_guide_tokens: 0,
        }
    }

    /// The rules that depend on more than one setting: a model is named, Anthropic gets a key and
    /// a temperature it accepts, the reasoning-model switch is only set for OpenAI-compatible
    /// servers, and the key can travel in an HTTP header. Each single value's own
    /// range is checked where it is read (`crate::config`). Errors never contain the key.
    pub fn check(&self) -> Result<(), LlmConfigError> {
        if self.model.trim().is_empty() {
            return Err(LlmConfigError::MissingModel {
                example: self.provider.example_model(),
            });
        }
        match &self.api_key {
            Some(key) if !key.expose().bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(LlmConfigError::UnsafeKey);
            }
            None if self.provider == ProviderKind::Anthropic => {
                return Err(LlmConfigError::MissingKey {
                    fallback: self.provider.fallback_key_var(),
                });
            }
            _ => {}
        }
        if self.reasoning_model && self.provider != ProviderKind::OpenAi {
            return Err(LlmConfigError::ReasoningModel {
                provider: self.provider,
            });
        }
        if let Some(t) = self.temperature {
            let max = self.provider.max_temperature();
            if !(0.0..=max).contains(&t) {
                return Err(LlmConfigError::Temperature {
                    value: t,
                    provider: self.provider,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// A rule of [`LlmSettings::check`] is broken. Callers branch on the variant to name the setting
/// (file key or variable) that must change; messages say how, and never contain the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmConfigError {
    /// A provider is set but no model.
    #[error("is not set: name the model the provider expects, e.g. {example}")]
    MissingModel {
        /// A model name to suggest.
        example: &'static str,
    },
    /// Anthropic without an API key.
    #[error("is not set: the Anthropic API needs a key (or set {fallback})")]
    MissingKey {
        /// The provider-specific variable also accepted.
        fallback: &'static str,
    },
    /// The key cannot be sent as an HTTP header value.
    #[error("the key contains spaces or non-ASCII characters that cannot be sent in an HTTP header; paste the key again")]
    UnsafeKey,
    /// The temperature is above what the provider accepts.
    #[error("{value} is out of range for {provider}; use a number from 0 to {max} (e.g. 0.2), or \"none\" to omit it")]
    Temperature {
        /// The configured temperature.
        value: f32,
        /// The provider that refuses it.
        provider: ProviderKind,
        /// The provider's ceiling.
        max: f32,
    },
    /// The reasoning-model switch is set for a provider it does not apply to.
    #[error("only applies to OpenAI-compatible servers (provider \"openai\"), not {provider}; set it to false")]
    ReasoningModel {
        /// The configured provider.
        provider: ProviderKind,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ant-test-SECRET-1234567890";

    #[test]
    fn defaults_per_provider() {
        let s = LlmSettings::new(ProviderKind::Anthropic, "claude-sonnet-4-5");
        assert_eq!(s.base_url, "https://api.anthropic.com");
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.max_tokens, 700);
        assert_eq!(s.temperature, Some(0.2));
        assert_eq!(s.max_retries, 2);
        assert_eq!(
            LlmSettings::new(ProviderKind::OpenAi, "m").base_url,
            "https://api.openai.com"
        );
    }

    #[test]
    fn cross_setting_rules_and_the_key_never_prints() {
        let mut s = LlmSettings::new(ProviderKind::Anthropic, "claude");
        assert!(matches!(s.check(), Err(LlmConfigError::MissingKey { .. })));
        s.api_key = Some(Secret::new(KEY));
        assert_eq!(s.check(), Ok(()));
        s.temperature = Some(1.5);
        assert!(matches!(s.check(), Err(LlmConfigError::Temperature { .. })));
        s.temperature = None;
        s.api_key = Some(Secret::new(format!("{KEY} with space\u{e9}")));
        let error = s.check().unwrap_err();
        assert_eq!(error, LlmConfigError::UnsafeKey);
        assert!(!error.to_string().contains(KEY));
        let debug = format!("{s:?}");
        assert!(!debug.contains(KEY) && debug.contains("***"), "{debug}");
        s.api_key = Some(Secret::new(KEY));
        s.reasoning_model = true;
        assert_eq!(
            s.check(),
            Err(LlmConfigError::ReasoningModel {
                provider: ProviderKind::Anthropic
            })
        );
        let openai = LlmSettings::new(ProviderKind::OpenAi, " ");
        assert!(matches!(
            openai.check(),
            Err(LlmConfigError::MissingModel { .. })
        ));
    }
}
