//! LLM provider settings: which provider, model and endpoint to use, read from a TOML table or from
//! `GUIDEBOT_LLM_*` environment variables, with an API key that never prints.

use serde::Deserialize;
use std::collections::HashMap;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Anthropic Messages API with native `search_result` citations.
    Anthropic,
    /// OpenAI Chat Completions, or any compatible server (vLLM, Ollama, llama.cpp, TGI).
    #[serde(alias = "openai-compatible")]
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

    fn parse(value: &str) -> Option<ProviderKind> {
        match value.trim().to_ascii_lowercase().as_str() {
            "anthropic" => Some(ProviderKind::Anthropic),
            "openai" | "openai-compatible" => Some(ProviderKind::OpenAi),
            _ => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider API key. It exists so the secret cannot leak by accident: `Debug` and `Display` print
/// `***`, and the only way to read it is the explicit [`ApiKey::expose`].
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key. Surrounding whitespace (a pasted trailing newline) is removed.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into().trim().to_string())
    }

    /// The secret itself, for the one place that builds the HTTP header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the key can be sent as an HTTP header value (visible ASCII only, not empty).
    fn is_header_safe(&self) -> bool {
        !self.0.is_empty() && self.0.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Everything needed to talk to one LLM provider. Deserializable from a TOML table
/// (`timeout_secs` instead of `timeout`; `base_url` defaults per provider) and readable from the
/// environment with [`LlmSettings::from_env_vars`]. `Debug` masks the API key.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawSettings")]
pub struct LlmSettings {
    /// Which API the client speaks.
    pub provider: ProviderKind,
    /// Model name sent in every request, e.g. `claude-sonnet-4-5` or `llama3.1:8b`.
    pub model: String,
    /// Scheme, host and optional path prefix; the client appends `/v1/messages` or
    /// `/v1/chat/completions` (a base already ending in `/v1` is not doubled).
    pub base_url: String,
    /// Secret for the provider; `None` only makes sense for local OpenAI-compatible servers.
    pub api_key: Option<ApiKey>,
    /// Per-request time limit (whole response for `complete`; headers and each gap between chunks
    /// for `stream`).
    pub timeout: Duration,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; `None` omits the field (for models that reject it).
    pub temperature: Option<f32>,
    /// Retries after the first attempt on 429, 5xx, 529, timeouts and connect errors.
    pub max_retries: u32,
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
        }
    }

    /// Reads the `GUIDEBOT_LLM_*` variables from `vars` (pass `std::env::vars().collect()`).
    ///
    /// `GUIDEBOT_LLM_PROVIDER` unset or empty means no LLM (extractive mode) and returns `Ok(None)`.
    /// Otherwise `GUIDEBOT_LLM_MODEL` is required; `GUIDEBOT_LLM_API_KEY` falls back to
    /// `ANTHROPIC_API_KEY` / `OPENAI_API_KEY` and is required for Anthropic. Every bad value is an
    /// error naming the variable and the fix; errors never contain the key.
    pub fn from_env_vars(
        vars: &HashMap<String, String>,
    ) -> Result<Option<LlmSettings>, LlmConfigError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };

        let Some(provider_raw) = get(ENV_PROVIDER) else {
            return Ok(None);
        };
        let provider = ProviderKind::parse(&provider_raw).ok_or_else(|| LlmConfigError::Invalid {
            var: ENV_PROVIDER,
            message: format!(
                "unknown provider {provider_raw:?}; use \"anthropic\" or \"openai\" (any OpenAI-compatible server), or unset it to run without an LLM"
            ),
        })?;

        let model = get(ENV_MODEL).ok_or(LlmConfigError::Missing {
            var: ENV_MODEL,
            hint: match provider {
                ProviderKind::Anthropic => {
                    "set it to an Anthropic model name, e.g. claude-sonnet-4-5"
                }
                ProviderKind::OpenAi => {
                    "set it to the model name the server expects, e.g. gpt-4.1-mini or llama3.1:8b"
                }
            },
        })?;

        let mut settings = LlmSettings::new(provider, model);

        if let Some(url) = get(ENV_BASE_URL) {
            settings.base_url =
                validate_base_url(&url).map_err(|message| LlmConfigError::Invalid {
                    var: ENV_BASE_URL,
                    message,
                })?;
        }

        let (key_var, key) = match get(ENV_API_KEY) {
            Some(k) => (ENV_API_KEY, Some(k)),
            None => (
                provider.fallback_key_var(),
                get(provider.fallback_key_var()),
            ),
        };
        match key {
            Some(k) => {
                let key = ApiKey::new(k);
                if !key.is_header_safe() {
                    return Err(LlmConfigError::Invalid {
                        var: key_var,
                        message: "the key contains spaces or non-ASCII characters that cannot be sent in an HTTP header; paste the key again".to_string(),
                    });
                }
                settings.api_key = Some(key);
            }
            None if provider == ProviderKind::Anthropic => {
                return Err(LlmConfigError::Missing {
                    var: ENV_API_KEY,
                    hint: "the Anthropic API needs a key: set GUIDEBOT_LLM_API_KEY (or ANTHROPIC_API_KEY)",
                });
            }
            None => {}
        }

        if let Some(raw) = get(ENV_TIMEOUT) {
            let secs: f64 = raw
                .parse()
                .map_err(|_| invalid_number(ENV_TIMEOUT, &raw, "a number of seconds, e.g. 30"))?;
            settings.timeout =
                validate_timeout_secs(secs).map_err(|message| LlmConfigError::Invalid {
                    var: ENV_TIMEOUT,
                    message,
                })?;
        }

        if let Some(raw) = get(ENV_MAX_TOKENS) {
            let n: u32 = raw.parse().map_err(|_| {
                invalid_number(ENV_MAX_TOKENS, &raw, "a positive whole number, e.g. 700")
            })?;
            if n == 0 {
                return Err(invalid_number(
                    ENV_MAX_TOKENS,
                    &raw,
                    "a positive whole number, e.g. 700",
                ));
            }
            settings.max_tokens = n;
        }

        if let Some(raw) = get(ENV_TEMPERATURE) {
            settings.temperature =
                if raw.eq_ignore_ascii_case("none") || raw.eq_ignore_ascii_case("off") {
                    None
                } else {
                    let t: f32 = raw.parse().map_err(|_| {
                        invalid_number(
                            ENV_TEMPERATURE,
                            &raw,
                            "a number such as 0.2, or \"none\" to omit it",
                        )
                    })?;
                    Some(validate_temperature(provider, t).map_err(|message| {
                        LlmConfigError::Invalid {
                            var: ENV_TEMPERATURE,
                            message,
                        }
                    })?)
                };
        }

        if let Some(raw) = get(ENV_MAX_RETRIES) {
            let n: u32 = raw.parse().map_err(|_| {
                invalid_number(ENV_MAX_RETRIES, &raw, "a whole number from 0 to 10, e.g. 2")
            })?;
            if n > MAX_RETRIES_LIMIT {
                return Err(invalid_number(
                    ENV_MAX_RETRIES,
                    &raw,
                    "a whole number from 0 to 10, e.g. 2",
                ));
            }
            settings.max_retries = n;
        }

        Ok(Some(settings))
    }
}

/// Environment variable selecting the provider (`anthropic` | `openai`); unset means no LLM.
pub const ENV_PROVIDER: &str = "GUIDEBOT_LLM_PROVIDER";
/// Environment variable with the model name.
pub const ENV_MODEL: &str = "GUIDEBOT_LLM_MODEL";
/// Environment variable overriding the provider's base URL.
pub const ENV_BASE_URL: &str = "GUIDEBOT_LLM_BASE_URL";
/// Environment variable with the API key (fallback `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`).
pub const ENV_API_KEY: &str = "GUIDEBOT_LLM_API_KEY";
/// Environment variable with the timeout in seconds.
pub const ENV_TIMEOUT: &str = "GUIDEBOT_LLM_TIMEOUT_SECS";
/// Environment variable with the max generated tokens.
pub const ENV_MAX_TOKENS: &str = "GUIDEBOT_LLM_MAX_TOKENS";
/// Environment variable with the temperature (`none` omits it).
pub const ENV_TEMPERATURE: &str = "GUIDEBOT_LLM_TEMPERATURE";
/// Environment variable with the retry count.
pub const ENV_MAX_RETRIES: &str = "GUIDEBOT_LLM_MAX_RETRIES";

/// Why LLM settings could not be built. Messages name the variable (or TOML key) and the fix, and
/// never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmConfigError {
    /// A required setting is absent.
    #[error("{var} is not set: {hint}")]
    Missing {
        /// The environment variable or TOML key.
        var: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A setting is present but unusable.
    #[error("{var} is invalid: {message}")]
    Invalid {
        /// The environment variable or TOML key.
        var: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl LlmConfigError {
    /// The variable (or TOML key) the error is about, for tests and structured logs.
    pub fn var(&self) -> &'static str {
        match self {
            LlmConfigError::Missing { var, .. } | LlmConfigError::Invalid { var, .. } => var,
        }
    }
}

fn invalid_number(var: &'static str, raw: &str, expected: &str) -> LlmConfigError {
    LlmConfigError::Invalid {
        var,
        message: format!("{raw:?} is not {expected}"),
    }
}

fn validate_base_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        format!(
            "{url:?} is not a URL ({e}); use e.g. https://api.openai.com or http://localhost:11434"
        )
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(format!("{url:?} must start with http:// or https://"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url:?} must not contain a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn validate_timeout_secs(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT_SECS {
        return Err(format!("{secs} is out of range; use a number of seconds between 0 and {MAX_TIMEOUT_SECS}, e.g. 30"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn validate_temperature(provider: ProviderKind, t: f32) -> Result<f32, String> {
    let max = provider.max_temperature();
    if !t.is_finite() || !(0.0..=max).contains(&t) {
        return Err(format!(
            "{t} is out of range for {provider}; use a number from 0 to {max} (e.g. 0.2), or \"none\" to omit it"
        ));
    }
    Ok(t)
}

/// The TOML shape of [`LlmSettings`]: optional fields get the documented defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    provider: ProviderKind,
    model: String,
    base_url: Option<String>,
    api_key: Option<ApiKey>,
    timeout_secs: Option<f64>,
    max_tokens: Option<u32>,
    #[serde(default = "default_temperature")]
    temperature: Option<f32>,
    max_retries: Option<u32>,
}

fn default_temperature() -> Option<f32> {
    Some(DEFAULT_TEMPERATURE)
}

impl TryFrom<RawSettings> for LlmSettings {
    type Error = LlmConfigError;

    fn try_from(raw: RawSettings) -> Result<Self, Self::Error> {
        let model = raw.model.trim().to_string();
        if model.is_empty() {
            return Err(LlmConfigError::Missing {
                var: "model",
                hint: "set the model name the provider expects",
            });
        }
        let mut s = LlmSettings::new(raw.provider, model);
        if let Some(url) = raw.base_url {
            s.base_url =
                validate_base_url(url.trim()).map_err(|message| LlmConfigError::Invalid {
                    var: "base_url",
                    message,
                })?;
        }
        if let Some(key) = raw.api_key {
            let key = ApiKey::new(key.0);
            if !key.0.is_empty() {
                if !key.is_header_safe() {
                    return Err(LlmConfigError::Invalid {
                        var: "api_key",
                        message:
                            "the key contains characters that cannot be sent in an HTTP header"
                                .to_string(),
                    });
                }
                s.api_key = Some(key);
            }
        }
        if let Some(secs) = raw.timeout_secs {
            s.timeout = validate_timeout_secs(secs).map_err(|message| LlmConfigError::Invalid {
                var: "timeout_secs",
                message,
            })?;
        }
        if let Some(n) = raw.max_tokens {
            if n == 0 {
                return Err(LlmConfigError::Invalid {
                    var: "max_tokens",
                    message: "must be a positive whole number, e.g. 700".to_string(),
                });
            }
            s.max_tokens = n;
        }
        s.temperature = match raw.temperature {
            Some(t) => Some(validate_temperature(raw.provider, t).map_err(|message| {
                LlmConfigError::Invalid {
                    var: "temperature",
                    message,
                }
            })?),
            None => None,
        };
        if let Some(n) = raw.max_retries {
            if n > MAX_RETRIES_LIMIT {
                return Err(LlmConfigError::Invalid {
                    var: "max_retries",
                    message: format!(
                        "{n} is too many; use a whole number from 0 to {MAX_RETRIES_LIMIT}"
                    ),
                });
            }
            s.max_retries = n;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ant-test-SECRET-1234567890";

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> LlmConfigError {
        match LlmSettings::from_env_vars(&vars(pairs)) {
            Err(e) => e,
            Ok(s) => panic!("expected an error, got {s:?}"),
        }
    }

    #[test]
    fn no_provider_means_no_llm() {
        assert!(LlmSettings::from_env_vars(&vars(&[])).unwrap().is_none());
        assert!(
            LlmSettings::from_env_vars(&vars(&[(ENV_PROVIDER, "  "), (ENV_MODEL, "m")]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn anthropic_defaults_and_fallback_key() {
        let s = LlmSettings::from_env_vars(&vars(&[
            (ENV_PROVIDER, "Anthropic"),
            (ENV_MODEL, "claude-sonnet-4-5"),
            ("ANTHROPIC_API_KEY", KEY),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.provider, ProviderKind::Anthropic);
        assert_eq!(s.model, "claude-sonnet-4-5");
        assert_eq!(s.base_url, "https://api.anthropic.com");
        assert_eq!(s.api_key.as_ref().map(ApiKey::expose), Some(KEY));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.max_tokens, 700);
        assert_eq!(s.temperature, Some(0.2));
        assert_eq!(s.max_retries, 2);
    }

    #[test]
    fn guidebot_key_wins_over_fallback() {
        let s = LlmSettings::from_env_vars(&vars(&[
            (ENV_PROVIDER, "openai"),
            (ENV_MODEL, "gpt-4.1-mini"),
            (ENV_API_KEY, "sk-primary"),
            ("OPENAI_API_KEY", "sk-fallback"),
            ("ANTHROPIC_API_KEY", "sk-other-provider"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.api_key.unwrap().expose(), "sk-primary");
    }

    #[test]
    fn openai_compatible_without_key_and_all_overrides() {
        let s = LlmSettings::from_env_vars(&vars(&[
            (ENV_PROVIDER, "openai"),
            (ENV_MODEL, "llama3.1:8b"),
            (ENV_BASE_URL, "http://localhost:11434/"),
            (ENV_TIMEOUT, "12.5"),
            (ENV_MAX_TOKENS, "300"),
            (ENV_TEMPERATURE, "none"),
            (ENV_MAX_RETRIES, "0"),
            ("ANTHROPIC_API_KEY", "not-for-openai"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.provider, ProviderKind::OpenAi);
        assert_eq!(s.base_url, "http://localhost:11434");
        assert!(s.api_key.is_none());
        assert_eq!(s.timeout, Duration::from_millis(12_500));
        assert_eq!(s.max_tokens, 300);
        assert_eq!(s.temperature, None);
        assert_eq!(s.max_retries, 0);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let base = [(ENV_PROVIDER, "openai"), (ENV_MODEL, "m")];
        let cases: Vec<(&str, &str)> = vec![
            (ENV_BASE_URL, "localhost:11434"),
            (ENV_BASE_URL, "ftp://example.com"),
            (ENV_TIMEOUT, "soon"),
            (ENV_TIMEOUT, "0"),
            (ENV_TIMEOUT, "-3"),
            (ENV_MAX_TOKENS, "lots"),
            (ENV_MAX_TOKENS, "0"),
            (ENV_TEMPERATURE, "hot"),
            (ENV_TEMPERATURE, "2.5"),
            (ENV_MAX_RETRIES, "-1"),
            (ENV_MAX_RETRIES, "99"),
        ];
        for (var, value) in cases {
            let mut pairs = base.to_vec();
            pairs.push((var, value));
            let e = err(&pairs);
            assert_eq!(e.var(), var, "{var}={value}: {e}");
            assert!(e.to_string().contains(var), "{e}");
        }
        let e = err(&[(ENV_PROVIDER, "gemini"), (ENV_MODEL, "m")]);
        assert_eq!(e.var(), ENV_PROVIDER);
        assert!(
            e.to_string().contains("anthropic") && e.to_string().contains("openai"),
            "{e}"
        );
        let e = err(&[
            (ENV_PROVIDER, "anthropic"),
            (ENV_MODEL, "m"),
            (ENV_API_KEY, KEY),
            (ENV_TEMPERATURE, "1.5"),
        ]);
        assert_eq!(e.var(), ENV_TEMPERATURE);
    }

    #[test]
    fn model_is_required_with_a_provider() {
        let e = err(&[(ENV_PROVIDER, "openai")]);
        assert_eq!(e.var(), ENV_MODEL);
        assert!(e.to_string().contains(ENV_MODEL));
    }

    #[test]
    fn anthropic_requires_a_key() {
        let e = err(&[
            (ENV_PROVIDER, "anthropic"),
            (ENV_MODEL, "claude"),
            ("OPENAI_API_KEY", "sk-x"),
        ]);
        assert_eq!(e.var(), ENV_API_KEY);
        assert!(e.to_string().contains("ANTHROPIC_API_KEY"), "{e}");
    }

    #[test]
    fn key_never_appears_in_debug_or_errors() {
        let s = LlmSettings::from_env_vars(&vars(&[
            (ENV_PROVIDER, "anthropic"),
            (ENV_MODEL, "claude"),
            (ENV_API_KEY, KEY),
        ]))
        .unwrap()
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains(KEY), "{debug}");
        assert!(debug.contains("***"), "{debug}");
        let key = s.api_key.unwrap();
        assert_eq!(format!("{key}"), "***");
        assert_eq!(format!("{key:?}"), "***");

        let bad = format!("{KEY} with space\u{e9}");
        let e = err(&[
            (ENV_PROVIDER, "anthropic"),
            (ENV_MODEL, "claude"),
            (ENV_API_KEY, &bad),
        ]);
        assert_eq!(e.var(), ENV_API_KEY);
        assert!(!e.to_string().contains(KEY), "{e}");
        assert!(!format!("{e:?}").contains(KEY));
    }

    #[test]
    fn toml_table_with_defaults() {
        let s: LlmSettings = toml::from_str(
            r#"
            provider = "openai"
            model = "gpt-4.1-mini"
            api_key = "sk-toml-secret"
            timeout_secs = 10
            "#,
        )
        .unwrap();
        assert_eq!(s.base_url, "https://api.openai.com");
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.temperature, Some(0.2));
        assert_eq!(s.max_tokens, 700);
        assert_eq!(s.max_retries, 2);
        assert!(!format!("{s:?}").contains("sk-toml-secret"));

        let s: LlmSettings = toml::from_str(
            "provider = \"anthropic\"\nmodel = \"claude\"\nbase_url = \"http://127.0.0.1:9/\"",
        )
        .unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:9");

        let e = toml::from_str::<LlmSettings>(
            "provider = \"openai\"\nmodel = \"m\"\ntemperature = 3.0",
        )
        .unwrap_err();
        assert!(e.to_string().contains("temperature"), "{e}");
        let e = toml::from_str::<LlmSettings>("provider = \"openai\"\nmodel = \"m\"\ntimeout = 3")
            .unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
    }
}
