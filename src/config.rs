//! One typed configuration for every way guidebot runs: built-in defaults, then an optional TOML
//! file (`--config FILE` or `GUIDEBOT_CONFIG`), then environment variables (`GUIDEBOT_*`, and the
//! Discord-standard `DISCORD_*` names for Discord settings).
//!
//! Secrets (the bot token, the interactions public key, the LLM API key) are never read from the
//! TOML file: only from an environment variable or from a file named by `<VAR>_FILE` (Docker and
//! Kubernetes secrets). Every bad value is reported with the key or variable it came from (and the
//! file and line for TOML values) and how to fix it; all problems are reported at once.
//!
//! The table [`KEYS`] is the single list of settings: `deploy/guidebot.example.toml` documents
//! exactly these keys (a test checks both ways), and `guidebot config check` prints them with the
//! layer each value came from.

use crate::bot::dispatch::Budgets;
use crate::bot::BotSettings;
use crate::engine::EngineConfig;
use crate::llm::config::{
    ENV_API_KEY, ENV_BASE_URL, ENV_MAX_RETRIES, ENV_MAX_TOKENS, ENV_MODEL, ENV_PROVIDER,
    ENV_TEMPERATURE, ENV_TIMEOUT,
};
use crate::llm::LlmSettings;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Environment variable naming the TOML file when `--config` is not given.
pub const ENV_CONFIG: &str = "GUIDEBOT_CONFIG";
/// The bot token for the gateway mode.
pub const ENV_DISCORD_TOKEN: &str = "DISCORD_TOKEN";
/// The application's Ed25519 public key (hex) for the HTTP interactions endpoint.
pub const ENV_DISCORD_PUBLIC_KEY: &str = "DISCORD_PUBLIC_KEY";
/// Suffix of the variables that name a file holding a secret (`DISCORD_TOKEN_FILE`, ...).
pub const FILE_SUFFIX: &str = "_FILE";

/// Default Discord REST base URL (the same as the transports').
pub const DEFAULT_DISCORD_API_BASE: &str = "https://discord.com";
/// Default request body limit of the HTTP endpoint (the same as the transport's).
pub const DEFAULT_HTTP_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default replay window of the HTTP endpoint, in seconds (the same as the transport's).
pub const DEFAULT_HTTP_REPLAY_WINDOW_SECS: u64 = 300;
/// Default quiet time after the last corpus change before a reload starts.
pub const DEFAULT_RELOAD_DEBOUNCE_MS: u64 = 500;

/// One setting: its TOML key, the environment variable that overrides it, and what it does.
/// Exists so docs, `config check` and the tests share one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// `section.name` as written in the TOML file.
    pub key: &'static str,
    /// The environment variable that overrides the file.
    pub env: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

/// Every file setting, in the order of the example file.
pub const KEYS: &[KeySpec] = &[
    KeySpec { key: "paths.corpus_dir", env: "GUIDEBOT_CORPUS_DIR", doc: "folder holding the guides (*.md) and vocabulary.toml" },
    KeySpec { key: "paths.index_dir", env: "GUIDEBOT_INDEX_DIR", doc: "folder for the search index (must be writable; rebuilt when stale)" },
    KeySpec { key: "llm.provider", env: ENV_PROVIDER, doc: "\"\" (extractive answers only), \"anthropic\" or \"openai\" (any OpenAI-compatible server)" },
    KeySpec { key: "llm.model", env: ENV_MODEL, doc: "model name, required with a provider" },
    KeySpec { key: "llm.base_url", env: ENV_BASE_URL, doc: "\"\" for the provider's public API, or e.g. http://ollama:11434" },
    KeySpec { key: "llm.timeout_secs", env: ENV_TIMEOUT, doc: "per-request timeout in seconds" },
    KeySpec { key: "llm.max_tokens", env: ENV_MAX_TOKENS, doc: "upper bound on generated tokens" },
    KeySpec { key: "llm.temperature", env: ENV_TEMPERATURE, doc: "sampling temperature, or \"none\" to omit it" },
    KeySpec { key: "llm.max_retries", env: ENV_MAX_RETRIES, doc: "retries after the first attempt (0-10)" },
    KeySpec { key: "bot.llm_cooldown_secs", env: "GUIDEBOT_BOT_LLM_COOLDOWN_SECS", doc: "per-user minimum time between two LLM answers" },
    KeySpec { key: "bot.edit_interval_ms", env: "GUIDEBOT_BOT_EDIT_INTERVAL_MS", doc: "minimum time between two edits of a streaming answer" },
    KeySpec { key: "bot.mention_replies_in_thread", env: "GUIDEBOT_MENTION_THREADS", doc: "answer mentions in a new thread" },
    KeySpec { key: "bot.answer_cache_secs", env: "GUIDEBOT_BOT_ANSWER_CACHE_SECS", doc: "how long an LLM answer is served from the cache (0 disables)" },
    KeySpec { key: "bot.store_path", env: "GUIDEBOT_STORE_PATH", doc: "SQLite file for feedback, analytics, budgets and the answer cache (\"\" disables)" },
    KeySpec { key: "bot.retention_days", env: "GUIDEBOT_BOT_RETENTION_DAYS", doc: "days questions and feedback are kept" },
    KeySpec { key: "bot.user_requests_per_day", env: "GUIDEBOT_BOT_USER_REQUESTS_PER_DAY", doc: "LLM answers per user per day (0 = unlimited)" },
    KeySpec { key: "bot.user_tokens_per_day", env: "GUIDEBOT_BOT_USER_TOKENS_PER_DAY", doc: "LLM tokens per user per day (0 = unlimited)" },
    KeySpec { key: "bot.guild_requests_per_day", env: "GUIDEBOT_BOT_GUILD_REQUESTS_PER_DAY", doc: "LLM answers per server per day (0 = unlimited)" },
    KeySpec { key: "bot.guild_tokens_per_day", env: "GUIDEBOT_BOT_GUILD_TOKENS_PER_DAY", doc: "LLM tokens per server per day (0 = unlimited)" },
    KeySpec { key: "discord.guild_id", env: "DISCORD_GUILD_ID", doc: "\"\" registers commands globally; a server id registers them there only" },
    KeySpec { key: "discord.api_base", env: "DISCORD_API_BASE", doc: "Discord REST base URL (a proxy or a fake Discord in tests)" },
    KeySpec { key: "discord.shards", env: "GUIDEBOT_SHARDS", doc: "\"auto\", \"2/4\" (shard 2 of 4) or \"0-1/4\" (shards 0 to 1 of 4)" },
    KeySpec { key: "http.addr", env: "GUIDEBOT_HTTP_ADDR", doc: "\"\" (off) or IP:PORT for the interactions endpoint" },
    KeySpec { key: "http.max_body_bytes", env: "GUIDEBOT_HTTP_MAX_BODY_BYTES", doc: "larger request bodies get 413" },
    KeySpec { key: "http.replay_window_secs", env: "GUIDEBOT_HTTP_REPLAY_WINDOW_SECS", doc: "signed timestamps further from now get 401" },
    KeySpec { key: "metrics.addr", env: "GUIDEBOT_METRICS_ADDR", doc: "\"\" (off) or IP:PORT for /metrics in gateway mode" },
    KeySpec { key: "log.format", env: "GUIDEBOT_LOG_FORMAT", doc: "\"text\" or \"json\"" },
    KeySpec { key: "log.level", env: "GUIDEBOT_LOG_LEVEL", doc: "a tracing filter, e.g. \"info\" or \"guidebot=debug,info\"" },
    KeySpec { key: "reload.watch", env: "GUIDEBOT_RELOAD_WATCH", doc: "rebuild the index when files in corpus_dir change" },
    KeySpec { key: "reload.debounce_ms", env: "GUIDEBOT_RELOAD_DEBOUNCE_MS", doc: "quiet time after the last change before rebuilding" },
];

/// The secret variables, read only from the environment or from the file named by `<VAR>_FILE`.
pub const SECRET_VARS: &[&str] = &[
    ENV_DISCORD_TOKEN,
    ENV_DISCORD_PUBLIC_KEY,
    ENV_API_KEY,
    ENV_ID_SALT,
];
/// Salt for hashing Discord ids in the store.
pub const ENV_ID_SALT: &str = "GUIDEBOT_ID_SALT";

/// Variables read for compatibility with the LLM module: provider-specific API keys used when
/// `GUIDEBOT_LLM_API_KEY` is unset.
pub const FALLBACK_KEY_VARS: &[&str] = &["ANTHROPIC_API_KEY", "OPENAI_API_KEY"];

/// A secret string. Exists so a token cannot leak by accident: `Debug`, `Display` and `Serialize`
/// all print `***`; only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, trimming surrounding whitespace (a trailing newline in a secret file).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().trim().to_string())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// Where a value came from, so an operator never wonders which setting is in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Source {
    /// The built-in default.
    Default,
    /// The TOML file, at this line.
    File { path: PathBuf, line: usize },
    /// An environment variable (for secrets possibly `<VAR>_FILE`).
    Env { var: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "file {}:{line}", path.display()),
            Source::Env { var } => write!(f, "env {var}"),
        }
    }
}

/// One thing wrong with the configuration: where (a variable, or `FILE:LINE: key`) and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The environment variable, or `FILE:LINE: section.key` for a file value.
    pub location: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The configuration cannot be used. Lists every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Every problem, in the order of [`KEYS`] (file syntax errors first).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "invalid configuration ({count} problem{})",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(location: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![Problem {
                location: location.into(),
                message: message.into(),
            }],
        }
    }
}

/// `[paths]`: where the guides and the index live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathsConfig {
    /// Folder holding the guides.
    pub corpus_dir: PathBuf,
    /// Folder for the search index; must be writable.
    pub index_dir: PathBuf,
}

/// `[llm]` as configured (the validated form is [`Config::llm_settings`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmConfig {
    /// `""` for no LLM, else `anthropic` or `openai`.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Base URL; `""` means the provider's default.
    pub base_url: String,
    /// Per-request timeout in seconds.
    pub timeout_secs: f64,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Sampling temperature; `None` omits it from requests.
    pub temperature: Option<f32>,
    /// Retries after the first attempt.
    pub max_retries: u32,
}

/// `[bot]`: behaviour shared by the gateway and the HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotConfig {
    /// Per-user minimum seconds between two LLM answers.
    pub llm_cooldown_secs: u64,
    /// Minimum milliseconds between two edits of a streaming answer.
    pub edit_interval_ms: u64,
    /// Answer mentions in a new thread.
    pub mention_replies_in_thread: bool,
    /// Seconds an LLM answer is served from the cache; 0 disables the cache.
    pub answer_cache_secs: u64,
    /// SQLite file for feedback, analytics, budgets and the cache; empty disables storage.
    pub store_path: String,
    /// Days questions and feedback are kept.
    pub retention_days: u64,
    /// Daily LLM allowances (0 = unlimited).
    pub user_requests_per_day: u64,
    pub user_tokens_per_day: u64,
    pub guild_requests_per_day: u64,
    pub guild_tokens_per_day: u64,
}

/// `[discord]`: where and how to reach Discord (the token is in [`Secrets`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscordConfig {
    /// Register commands to this guild only; `None`: globally.
    pub guild_id: Option<u64>,
    /// REST base URL without `/api/v10`.
    pub api_base: String,
    /// Shard plan: `auto`, `N/TOTAL` or `FIRST-LAST/TOTAL`.
    pub shards: String,
}

/// `[http]`: the signed interactions endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpConfig {
    /// Listen address; `None`: the endpoint is off unless `serve --http` says otherwise.
    pub addr: Option<SocketAddr>,
    /// Request body limit.
    pub max_body_bytes: usize,
    /// Replay window for signed timestamps, in seconds.
    pub replay_window_secs: u64,
}

/// `[metrics]`: Prometheus endpoint for the gateway mode.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsConfig {
    /// Listen address; `None`: no separate metrics listener.
    pub addr: Option<SocketAddr>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogConfig {
    /// Text or JSON.
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive string.
    pub level: String,
}

/// `[reload]`: live corpus reload (see `crate::reload`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadConfig {
    /// Watch `paths.corpus_dir` and rebuild on changes.
    pub watch: bool,
    /// Quiet time after the last change before rebuilding, in milliseconds.
    pub debounce_ms: u64,
}

/// Secrets, from the environment or `<VAR>_FILE` only. Every field prints as `***`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Secrets {
    /// `DISCORD_TOKEN`: the gateway's bot token.
    pub discord_token: Option<Secret>,
    /// `DISCORD_PUBLIC_KEY`: verifies signed HTTP interactions.
    pub discord_public_key: Option<Secret>,
    /// `GUIDEBOT_LLM_API_KEY` (or `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`).
    pub llm_api_key: Option<Secret>,
    /// `GUIDEBOT_ID_SALT`: salt for hashing Discord ids before storage.
    pub id_salt: Option<Secret>,
}

/// The effective configuration. Build it with [`Config::load`]; read it through the sections or the
/// conversions to the types the engine and the bot take.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `[paths]`.
    pub paths: PathsConfig,
    /// `[llm]`.
    pub llm: LlmConfig,
    /// `[bot]`.
    pub bot: BotConfig,
    /// `[discord]`.
    pub discord: DiscordConfig,
    /// `[http]`.
    pub http: HttpConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[reload]`.
    pub reload: ReloadConfig,
    /// Secrets (masked when printed).
    pub secrets: Secrets,
    /// The TOML file read, if any.
    pub file: Option<PathBuf>,
    #[serde(skip)]
    llm_settings: Option<LlmSettings>,
    #[serde(skip)]
    sources: BTreeMap<&'static str, Source>,
}

// ---------------------------------------------------------------------------------------------
// The TOML file's shape: every value optional and spanned (for line numbers), unknown keys denied.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    paths: FilePaths,
    #[serde(default)]
    llm: FileLlm,
    #[serde(default)]
    bot: FileBot,
    #[serde(default)]
    discord: FileDiscord,
    #[serde(default)]
    http: FileHttp,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    reload: FileReload,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePaths {
    corpus_dir: Option<Spanned<PathBuf>>,
    index_dir: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NumberOrWord {
    Number(f64),
    Word(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLlm {
    provider: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<f64>>,
    max_tokens: Option<Spanned<u32>>,
    temperature: Option<Spanned<NumberOrWord>>,
    max_retries: Option<Spanned<u32>>,
    /// Present only to give a precise error: keys do not belong in the file.
    api_key: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBot {
    llm_cooldown_secs: Option<Spanned<u64>>,
    edit_interval_ms: Option<Spanned<u64>>,
    mention_replies_in_thread: Option<Spanned<bool>>,
    answer_cache_secs: Option<Spanned<u64>>,
    store_path: Option<Spanned<String>>,
    retention_days: Option<Spanned<u64>>,
    user_requests_per_day: Option<Spanned<u64>>,
    user_tokens_per_day: Option<Spanned<u64>>,
    guild_requests_per_day: Option<Spanned<u64>>,
    guild_tokens_per_day: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDiscord {
    guild_id: Option<Spanned<String>>,
    api_base: Option<Spanned<String>>,
    shards: Option<Spanned<String>>,
    /// Present only to give a precise error.
    token: Option<Spanned<toml::Value>>,
    /// Present only to give a precise error.
    public_key: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHttp {
    addr: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<u64>>,
    replay_window_secs: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    addr: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<Spanned<String>>,
    level: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReload {
    watch: Option<Spanned<bool>>,
    debounce_ms: Option<Spanned<u64>>,
}

// ---------------------------------------------------------------------------------------------

fn spec(key: &str) -> &'static KeySpec {
    KEYS.iter()
        .find(|spec| spec.key == key)
        .unwrap_or_else(|| panic!("{key} is missing from config::KEYS"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map(|before| before.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// Applies the layers for one key at a time and collects problems instead of stopping at the first.
struct Layers<'a> {
    env: &'a HashMap<String, String>,
    file: Option<(&'a Path, &'a str)>,
    sources: BTreeMap<&'static str, Source>,
    problems: Vec<Problem>,
}

impl<'a> Layers<'a> {
    fn env_value(&self, var: &str) -> Option<&'a str> {
        self.env
            .get(var)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }

    fn file_location(&self, key: &str, span: std::ops::Range<usize>) -> (String, Source) {
        match self.file {
            Some((path, text)) => {
                let line = line_of(text, span.start);
                (
                    format!("{}:{line}: {key}", path.display()),
                    Source::File {
                        path: path.to_path_buf(),
                        line,
                    },
                )
            }
            None => (
                key.to_string(),
                Source::File {
                    path: PathBuf::new(),
                    line: 0,
                },
            ),
        }
    }

    /// The value of `key`: the environment variable if set, else the file value, else `default`.
    /// `parse` reads the variable's text; `check` validates a value from either layer and returns
    /// the fix when it is wrong.
    fn pick<T: Clone>(
        &mut self,
        key: &'static str,
        default: T,
        file: Option<Spanned<T>>,
        parse: impl Fn(&str) -> Result<T, String>,
        check: impl Fn(&T) -> Result<(), String>,
    ) -> T {
        let spec = spec(key);
        if let Some(raw) = self.env_value(spec.env) {
            match parse(raw).and_then(|value| check(&value).map(|()| value)) {
                Ok(value) => {
                    self.sources.insert(
                        key,
                        Source::Env {
                            var: spec.env.to_string(),
                        },
                    );
                    return value;
                }
                Err(message) => {
                    self.problems.push(Problem {
                        location: spec.env.to_string(),
                        message: format!("{raw:?} is invalid: {message}"),
                    });
                    return default;
                }
            }
        }
        if let Some(spanned) = file {
            let span = spanned.span();
            let value = spanned.into_inner();
            let (location, source) = self.file_location(key, span);
            match check(&value) {
                Ok(()) => {
                    self.sources.insert(key, source);
                    return value;
                }
                Err(message) => {
                    self.problems.push(Problem { location, message });
                    return default;
                }
            }
        }
        self.sources.insert(key, Source::Default);
        default
    }

    /// A secret from `VAR` or the file named by `VAR_FILE` (both set is an error: ambiguous).
    fn secret(&mut self, var: &'static str) -> Option<(Secret, Source)> {
        let file_var = format!("{var}{FILE_SUFFIX}");
        let direct = self.env_value(var);
        let from_file = self.env_value(&file_var);
        match (direct, from_file) {
            (Some(_), Some(_)) => {
                self.problems.push(Problem {
                    location: var.to_string(),
                    message: format!("both {var} and {file_var} are set; keep only one"),
                });
                None
            }
            (Some(value), None) => Some((
                Secret::new(value),
                Source::Env {
                    var: var.to_string(),
                },
            )),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() => Some((
                    Secret::new(text),
                    Source::Env {
                        var: file_var.clone(),
                    },
                )),
                Ok(_) => {
                    self.problems.push(Problem {
                        location: file_var.clone(),
                        message: format!(
                            "the secret file {path} is empty; put the {var} value in it"
                        ),
                    });
                    None
                }
                Err(error) => {
                    self.problems.push(Problem {
                        location: file_var.clone(),
                        message: format!(
                            "cannot read the secret file {path} ({error}); mount the secret there or unset {file_var}"
                        ),
                    });
                    None
                }
            },
            (None, None) => None,
        }
    }
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("use true or false".to_string()),
    }
}

fn parse_number<T: std::str::FromStr>(
    expected: &'static str,
) -> impl Fn(&str) -> Result<T, String> {
    move |raw| {
        raw.trim()
            .parse::<T>()
            .map_err(|_| format!("use {expected}"))
    }
}

fn in_range(low: u64, high: u64, what: &'static str) -> impl Fn(&u64) -> Result<(), String> {
    move |value| {
        if (low..=high).contains(value) {
            Ok(())
        } else {
            Err(format!(
                "{value} is out of range; use {what} from {low} to {high}"
            ))
        }
    }
}

fn check_url(what: &'static str, example: &'static str) -> impl Fn(&String) -> Result<(), String> {
    move |value| {
        let trimmed = value.trim().trim_end_matches('/');
        let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
            && trimmed.len() > "https://".len()
            && reqwest::Url::parse(trimmed).is_ok();
        if ok {
            Ok(())
        } else {
            Err(format!("{value:?} is not {what}; use e.g. {example}"))
        }
    }
}

fn check_addr(value: &str) -> Result<(), String> {
    if value.trim().is_empty() || value.trim().parse::<SocketAddr>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not IP:PORT; use e.g. 0.0.0.0:8080 (all interfaces) or 127.0.0.1:9000, or \"\" to turn it off"
        ))
    }
}

/// Which shards this process runs. Discord routes a guild's events to shard
/// `(guild_id >> 22) % total`; several processes (or machines) split the guilds by each running a
/// range of the same `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardPlan {
    /// All shards in this process, as many as Discord recommends (`GET /gateway/bot`).
    Auto,
    /// Shards `first..=last` of `total`.
    Range { first: u32, last: u32, total: u32 },
}

impl ShardPlan {
    /// Parses `auto`, `N/TOTAL` (one shard) or `FIRST-LAST/TOTAL` (inclusive range).
    pub fn parse(text: &str) -> Result<ShardPlan, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ShardPlan::Auto);
        }
        let shape = || {
            format!(
                "{text:?} is not a shard plan; use \"auto\", \"2/4\" (shard 2 of 4) or \"0-1/4\" (shards 0 to 1 of 4)"
            )
        };
        let (range, total) = text.split_once('/').ok_or_else(shape)?;
        let number = |part: &str| part.trim().parse::<u32>().map_err(|_| shape());
        let total = number(total)?;
        let (first, last) = match range.split_once('-') {
            Some((first, last)) => (number(first)?, number(last)?),
            None => {
                let only = number(range)?;
                (only, only)
            }
        };
        if total == 0 {
            return Err(format!(
                "{text:?}: the total number of shards must be at least 1"
            ));
        }
        if first > last || last >= total {
            return Err(format!(
                "{text:?}: shards are numbered 0 to {} and the range must go upwards",
                total - 1
            ));
        }
        Ok(ShardPlan::Range { first, last, total })
    }
}

/// Checks a shard plan the way the gateway parses it: `auto`, `N/TOTAL` or `FIRST-LAST/TOTAL`.
pub fn check_shards(text: &str) -> Result<(), String> {
    ShardPlan::parse(text).map(|_| ())
}

fn check_guild(value: &str) -> Result<(), String> {
    if value.trim().is_empty() || value.trim().parse::<u64>().is_ok_and(|id| id > 0) {
        Ok(())
    } else {
        Err(format!("{value:?} is not a server id; enable Developer Mode in Discord, right-click the server, Copy Server ID, or use \"\" to register commands globally"))
    }
}

fn check_level(value: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::try_new(value)
        .map(|_| ())
        .map_err(|error| {
            format!("{value:?} is not a log filter ({error}); use e.g. \"info\" or \"guidebot=debug,info\"")
        })
}

fn check_format(value: &str) -> Result<(), String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "text" | "json" => Ok(()),
        _ => Err(format!(
            "{value:?} is not a log format; use \"text\" or \"json\""
        )),
    }
}

fn not_empty_path(value: &Path) -> Result<(), String> {
    if value.as_os_str().is_empty() {
        Err("must not be empty; use a folder path".to_string())
    } else {
        Ok(())
    }
}

fn no_check<T>(_: &T) -> Result<(), String> {
    Ok(())
}

fn parse_string(raw: &str) -> Result<String, String> {
    Ok(raw.trim().to_string())
}

fn optional_addr(value: &str) -> Option<SocketAddr> {
    value.trim().parse().ok()
}

fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> Problem {
    let line = error
        .span()
        .map(|span| line_of(text, span.start))
        .unwrap_or(1);
    let mut message = error.message().trim().to_string();
    if message.starts_with("unknown field") {
        message.push_str(
            "; see deploy/guidebot.example.toml for every key, or `guidebot config check`",
        );
    }
    Problem {
        location: format!("{}:{line}", path.display()),
        message,
    }
}

impl Config {
    /// Loads the configuration: defaults, then `file` (or the file named by `GUIDEBOT_CONFIG` in
    /// `env` when `file` is `None`; no file at all is fine), then the variables in `env` (pass
    /// `std::env::vars().collect()`). Secrets come from `env` or the files named by `<VAR>_FILE`.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let from_env = env
            .get(ENV_CONFIG)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let path = file.map(Path::to_path_buf).or(from_env);
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|error| {
                    ConfigError::one(
                        path.display().to_string(),
                        format!(
                            "cannot read the config file ({error}); fix the path given by --config or {ENV_CONFIG}"
                        ),
                    )
                })?;
                Config::from_toml_str(&text, &path, env)
            }
            None => Config::from_layers(None, FileConfig::default(), env),
        }
    }

    /// Like [`Config::load`] with the file's contents given (`path` is used in messages).
    pub fn from_toml_str(
        text: &str,
        path: &Path,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|error| ConfigError {
            problems: vec![toml_error(path, text, &error)],
        })?;
        Config::from_layers(Some((path, text)), file, env)
    }

    /// Only the defaults and `env` (no file).
    pub fn from_env(env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        Config::from_layers(None, FileConfig::default(), env)
    }

    fn from_layers(
        file_text: Option<(&Path, &str)>,
        file: FileConfig,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut layers = Layers {
            env,
            file: file_text,
            sources: BTreeMap::new(),
            problems: Vec::new(),
        };

        // Secrets in the file are refused with the variable to use instead.
        for (key, value, var) in [
            ("llm.api_key", &file.llm.api_key, ENV_API_KEY),
            ("discord.token", &file.discord.token, ENV_DISCORD_TOKEN),
            (
                "discord.public_key",
                &file.discord.public_key,
                ENV_DISCORD_PUBLIC_KEY,
            ),
        ] {
            if let Some(value) = value {
                let (location, _) = layers.file_location(key, value.span());
                layers.problems.push(Problem {
                    location,
                    message: format!(
                        "secrets are not read from the config file; remove it and set {var} or {var}{FILE_SUFFIX} (a file holding it)"
                    ),
                });
            }
        }

        let paths = PathsConfig {
            corpus_dir: layers.pick(
                "paths.corpus_dir",
                PathBuf::from("corpus"),
                file.paths.corpus_dir,
                |raw| Ok(PathBuf::from(raw)),
                |value: &PathBuf| not_empty_path(value),
            ),
            index_dir: layers.pick(
                "paths.index_dir",
                PathBuf::from("index"),
                file.paths.index_dir,
                |raw| Ok(PathBuf::from(raw)),
                |value: &PathBuf| not_empty_path(value),
            ),
        };

        let provider = layers.pick(
            "llm.provider",
            String::new(),
            file.llm.provider,
            parse_string,
            |value: &String| match value.trim().to_ascii_lowercase().as_str() {
                "" | "none" | "anthropic" | "openai" | "openai-compatible" => Ok(()),
                _ => Err(format!(
                    "unknown provider {value:?}; use \"anthropic\", \"openai\" (any OpenAI-compatible server), or \"\" to run without an LLM"
                )),
            },
        );
        let provider = match provider.trim().to_ascii_lowercase().as_str() {
            "none" => String::new(),
            other => other.to_string(),
        };
        let temperature_file = file.llm.temperature.map(|spanned| {
            let span = spanned.span();
            let value = match spanned.into_inner() {
                NumberOrWord::Number(n) => Ok(n as f32),
                NumberOrWord::Word(word) => Err(word),
            };
            Spanned::new(span, value)
        });
        let llm = LlmConfig {
            model: layers.pick("llm.model", String::new(), file.llm.model, parse_string, no_check),
            base_url: layers.pick(
                "llm.base_url",
                String::new(),
                file.llm.base_url,
                parse_string,
                |value: &String| {
                    if value.trim().is_empty() {
                        Ok(())
                    } else {
                        check_url("an http(s) URL", "https://api.openai.com or http://ollama:11434")(value)
                    }
                },
            ),
            timeout_secs: layers.pick(
                "llm.timeout_secs",
                crate::llm::config::DEFAULT_TIMEOUT.as_secs_f64(),
                file.llm.timeout_secs,
                parse_number("a number of seconds, e.g. 30"),
                |secs: &f64| {
                    if secs.is_finite() && *secs > 0.0 && *secs <= crate::llm::config::MAX_TIMEOUT_SECS {
                        Ok(())
                    } else {
                        Err(format!("{secs} is out of range; use a number of seconds above 0 and at most {}, e.g. 30", crate::llm::config::MAX_TIMEOUT_SECS))
                    }
                },
            ),
            max_tokens: layers.pick(
                "llm.max_tokens",
                crate::llm::config::DEFAULT_MAX_TOKENS,
                file.llm.max_tokens,
                parse_number("a positive whole number, e.g. 700"),
                |n: &u32| {
                    if *n > 0 {
                        Ok(())
                    } else {
                        Err("use a positive whole number, e.g. 700".to_string())
                    }
                },
            ),
            temperature: {
                let picked: Result<f32, String> = layers.pick(
                    "llm.temperature",
                    Ok(crate::llm::config::DEFAULT_TEMPERATURE),
                    temperature_file,
                    |raw| Ok(raw.parse::<f32>().map_err(|_| raw.to_string())),
                    |value: &Result<f32, String>| match value {
                        Ok(t) if t.is_finite() && (0.0..=2.0).contains(t) => Ok(()),
                        Ok(t) => Err(format!("{t} is out of range; use a number from 0 to 2 (at most 1 for anthropic), or \"none\" to omit it")),
                        Err(word) if word.eq_ignore_ascii_case("none") || word.eq_ignore_ascii_case("off") => Ok(()),
                        Err(word) => Err(format!("{word:?} is not a number; use e.g. 0.2, or \"none\" to omit it")),
                    },
                );
                picked.ok()
            },
            max_retries: layers.pick(
                "llm.max_retries",
                crate::llm::config::DEFAULT_MAX_RETRIES,
                file.llm.max_retries,
                parse_number("a whole number from 0 to 10, e.g. 2"),
                |n: &u32| {
                    if *n <= crate::llm::config::MAX_RETRIES_LIMIT {
                        Ok(())
                    } else {
                        Err(format!("{n} is too many; use a whole number from 0 to {}", crate::llm::config::MAX_RETRIES_LIMIT))
                    }
                },
            ),
            provider,
        };

        let defaults = BotSettings::default();
        let bot = BotConfig {
            llm_cooldown_secs: layers.pick(
                "bot.llm_cooldown_secs",
                defaults.llm_cooldown.as_secs(),
                file.bot.llm_cooldown_secs,
                parse_number("a whole number of seconds, e.g. 20"),
                in_range(0, 86_400, "a whole number of seconds"),
            ),
            edit_interval_ms: layers.pick(
                "bot.edit_interval_ms",
                defaults.edit_interval.as_millis() as u64,
                file.bot.edit_interval_ms,
                parse_number("a whole number of milliseconds, e.g. 1200"),
                in_range(
                    250,
                    60_000,
                    "a whole number of milliseconds (Discord rate-limits edits)",
                ),
            ),
            mention_replies_in_thread: layers.pick(
                "bot.mention_replies_in_thread",
                defaults.mention_replies_in_thread,
                file.bot.mention_replies_in_thread,
                parse_bool,
                no_check,
            ),
            answer_cache_secs: layers.pick(
                "bot.answer_cache_secs",
                defaults.answer_cache_ttl.as_secs(),
                file.bot.answer_cache_secs,
                parse_number("a whole number of seconds, e.g. 21600"),
                in_range(0, 2592000, "a whole number of seconds, e.g. 21600"),
            ),
            store_path: layers.pick(
                "bot.store_path",
                "guidebot.sqlite".to_string(),
                file.bot.store_path,
                parse_string,
                no_check,
            ),
            retention_days: layers.pick(
                "bot.retention_days",
                90,
                file.bot.retention_days,
                parse_number("a whole number of days, e.g. 90"),
                in_range(1, 3650, "a whole number of days, e.g. 90"),
            ),
            user_requests_per_day: layers.pick(
                "bot.user_requests_per_day",
                0,
                file.bot.user_requests_per_day,
                parse_number("a whole number, 0 for unlimited"),
                in_range(0, 1000000, "a whole number, 0 for unlimited"),
            ),
            user_tokens_per_day: layers.pick(
                "bot.user_tokens_per_day",
                0,
                file.bot.user_tokens_per_day,
                parse_number("a whole number, 0 for unlimited"),
                in_range(0, 1000000000, "a whole number, 0 for unlimited"),
            ),
            guild_requests_per_day: layers.pick(
                "bot.guild_requests_per_day",
                0,
                file.bot.guild_requests_per_day,
                parse_number("a whole number, 0 for unlimited"),
                in_range(0, 1000000, "a whole number, 0 for unlimited"),
            ),
            guild_tokens_per_day: layers.pick(
                "bot.guild_tokens_per_day",
                0,
                file.bot.guild_tokens_per_day,
                parse_number("a whole number, 0 for unlimited"),
                in_range(0, 1000000000, "a whole number, 0 for unlimited"),
            ),
        };

        let guild = layers.pick(
            "discord.guild_id",
            String::new(),
            file.discord.guild_id,
            parse_string,
            |value: &String| check_guild(value),
        );
        let discord = DiscordConfig {
            guild_id: guild.trim().parse().ok(),
            api_base: layers
                .pick(
                    "discord.api_base",
                    DEFAULT_DISCORD_API_BASE.to_string(),
                    file.discord.api_base,
                    parse_string,
                    check_url("an http(s) URL without /api/v10", DEFAULT_DISCORD_API_BASE),
                )
                .trim()
                .trim_end_matches('/')
                .to_string(),
            shards: layers
                .pick(
                    "discord.shards",
                    "auto".to_string(),
                    file.discord.shards,
                    parse_string,
                    |value: &String| check_shards(value),
                )
                .trim()
                .to_string(),
        };

        let http_addr = layers.pick(
            "http.addr",
            String::new(),
            file.http.addr,
            parse_string,
            |value: &String| check_addr(value),
        );
        let http = HttpConfig {
            addr: optional_addr(&http_addr),
            max_body_bytes: layers.pick(
                "http.max_body_bytes",
                DEFAULT_HTTP_MAX_BODY_BYTES as u64,
                file.http.max_body_bytes,
                parse_number("a number of bytes, e.g. 65536"),
                in_range(1024, 16 * 1024 * 1024, "a number of bytes"),
            ) as usize,
            replay_window_secs: layers.pick(
                "http.replay_window_secs",
                DEFAULT_HTTP_REPLAY_WINDOW_SECS,
                file.http.replay_window_secs,
                parse_number("a whole number of seconds, e.g. 300"),
                in_range(1, 3600, "a whole number of seconds"),
            ),
        };

        let metrics_addr = layers.pick(
            "metrics.addr",
            String::new(),
            file.metrics.addr,
            parse_string,
            |value: &String| check_addr(value),
        );
        let metrics = MetricsConfig {
            addr: optional_addr(&metrics_addr),
        };

        let format = layers.pick(
            "log.format",
            "text".to_string(),
            file.log.format,
            parse_string,
            |value: &String| check_format(value),
        );
        let log = LogConfig {
            format: if format.trim().eq_ignore_ascii_case("json") {
                LogFormat::Json
            } else {
                LogFormat::Text
            },
            level: layers.pick(
                "log.level",
                "info".to_string(),
                file.log.level,
                parse_string,
                |value: &String| check_level(value),
            ),
        };

        let reload = ReloadConfig {
            watch: layers.pick(
                "reload.watch",
                true,
                file.reload.watch,
                parse_bool,
                no_check,
            ),
            debounce_ms: layers.pick(
                "reload.debounce_ms",
                DEFAULT_RELOAD_DEBOUNCE_MS,
                file.reload.debounce_ms,
                parse_number("a whole number of milliseconds, e.g. 500"),
                in_range(0, 60_000, "a whole number of milliseconds"),
            ),
        };

        let mut secret_sources = Vec::new();
        let mut take_secret = |layers: &mut Layers, var: &'static str| {
            layers.secret(var).map(|(secret, source)| {
                secret_sources.push((var, source));
                secret
            })
        };
        let discord_token = take_secret(&mut layers, ENV_DISCORD_TOKEN);
        let discord_public_key = take_secret(&mut layers, ENV_DISCORD_PUBLIC_KEY);
        let id_salt = take_secret(&mut layers, ENV_ID_SALT);
        let mut llm_api_key = take_secret(&mut layers, ENV_API_KEY);
        if llm_api_key.is_none() {
            for var in FALLBACK_KEY_VARS {
                let applies = match llm.provider.as_str() {
                    "anthropic" => *var == "ANTHROPIC_API_KEY",
                    "openai" | "openai-compatible" => *var == "OPENAI_API_KEY",
                    _ => false,
                };
                if applies {
                    if let Some(value) = layers.env_value(var) {
                        llm_api_key = Some(Secret::new(value));
                        secret_sources.push((
                            ENV_API_KEY,
                            Source::Env {
                                var: var.to_string(),
                            },
                        ));
                    }
                }
            }
        }
        let secrets = Secrets {
            discord_token,
            discord_public_key,
            llm_api_key,
            id_salt,
        };
        let mut sources = std::mem::take(&mut layers.sources);
        for (var, source) in secret_sources {
            sources.insert(var, source);
        }

        // The LLM settings are validated by the LLM module itself, so the rules (and the
        // provider-specific ones, like Anthropic's temperature limit or its required key) live in
        // one place; its errors are renamed to the key or variable the value came from.
        let mut problems = std::mem::take(&mut layers.problems);
        let llm_settings = if problems.is_empty() {
            match llm_settings_from(&llm, secrets.llm_api_key.as_ref()) {
                Ok(settings) => settings,
                Err(error) => {
                    let var = error.var();
                    let key = KEYS
                        .iter()
                        .find(|spec| spec.env == var)
                        .map(|spec| spec.key);
                    let location = match key.and_then(|key| sources.get(key)) {
                        Some(Source::File { path, line }) => {
                            format!("{}:{line}: {}", path.display(), key.unwrap_or(var))
                        }
                        Some(Source::Default) => key.unwrap_or(var).to_string(),
                        _ => var.to_string(),
                    };
                    let text = error.to_string();
                    let message = text
                        .strip_prefix(var)
                        .map(|rest| rest.trim_start().to_string())
                        .unwrap_or(text);
                    problems.push(Problem { location, message });
                    None
                }
            }
        } else {
            None
        };

        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            paths,
            llm,
            bot,
            discord,
            http,
            metrics,
            log,
            reload,
            secrets,
            file: file_text.map(|(path, _)| path.to_path_buf()),
            llm_settings,
            sources,
        })
    }

    /// What the engine needs: the folders and the validated LLM settings.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            corpus_dir: self.paths.corpus_dir.clone(),
            extra_corpus_dirs: Vec::new(),
            index_dir: self.paths.index_dir.clone(),
            llm: self.llm_settings(),
        }
    }

    /// What the dispatcher needs.
    pub fn bot_settings(&self) -> BotSettings {
        BotSettings {
            llm_cooldown: Duration::from_secs(self.bot.llm_cooldown_secs),
            edit_interval: Duration::from_millis(self.bot.edit_interval_ms),
            mention_replies_in_thread: self.bot.mention_replies_in_thread,
            budgets: Budgets {
                user_requests_per_day: nonzero(self.bot.user_requests_per_day),
                user_tokens_per_day: nonzero(self.bot.user_tokens_per_day),
                guild_requests_per_day: nonzero(self.bot.guild_requests_per_day),
                guild_tokens_per_day: nonzero(self.bot.guild_tokens_per_day),
            },
            answer_cache_ttl: Duration::from_secs(self.bot.answer_cache_secs),
            id_salt: self
                .secrets
                .id_salt
                .as_ref()
                .map(|salt| salt.expose().to_string())
                .unwrap_or_else(|| BotSettings::default().id_salt),
        }
    }

    /// The storage file, `None` when storage is disabled (empty path).
    pub fn store_path(&self) -> Option<PathBuf> {
        let path = self.bot.store_path.trim();
        (!path.is_empty()).then(|| PathBuf::from(path))
    }

    /// The validated LLM settings; `None` when no provider is configured (extractive answers).
    pub fn llm_settings(&self) -> Option<LlmSettings> {
        self.llm_settings.clone()
    }

    /// The debounce of the corpus watcher.
    pub fn reload_debounce(&self) -> Duration {
        Duration::from_millis(self.reload.debounce_ms)
    }

    /// Where the value of `key` (a [`KEYS`] key, or a secret variable like `DISCORD_TOKEN`) came
    /// from; `None` for a secret that is not set.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.sources.get(key)
    }

    /// The effective settings under the environment variable names the transports read
    /// (`GatewaySettings::from_env_vars`, `HttpSettings::from_env_vars`, `LlmSettings::from_env_vars`),
    /// secrets included in clear. Lets `serve` hand the merged file + env + `*_FILE` configuration to
    /// code that reads variables, without the transports knowing about the file. Never log it.
    pub fn to_env_vars(&self) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        for spec in KEYS {
            if let Some(value) = self.value_text(spec.key) {
                if !value.is_empty() {
                    vars.insert(spec.env.to_string(), value);
                }
            }
        }
        for (var, secret) in [
            (ENV_DISCORD_TOKEN, &self.secrets.discord_token),
            (ENV_DISCORD_PUBLIC_KEY, &self.secrets.discord_public_key),
            (ENV_API_KEY, &self.secrets.llm_api_key),
            (ENV_ID_SALT, &self.secrets.id_salt),
        ] {
            if let Some(secret) = secret {
                vars.insert(var.to_string(), secret.expose().to_string());
            }
        }
        vars
    }

    /// The value of one [`KEYS`] key as text (`""` for unset optional values), as an environment
    /// variable would hold it. `None` for an unknown key.
    pub fn value_text(&self, key: &str) -> Option<String> {
        let text = match key {
            "paths.corpus_dir" => self.paths.corpus_dir.display().to_string(),
            "paths.index_dir" => self.paths.index_dir.display().to_string(),
            "llm.provider" => self.llm.provider.clone(),
            "llm.model" => self.llm.model.clone(),
            "llm.base_url" => self.llm.base_url.clone(),
            "llm.timeout_secs" => self.llm.timeout_secs.to_string(),
            "llm.max_tokens" => self.llm.max_tokens.to_string(),
            "llm.temperature" => match self.llm.temperature {
                Some(t) => t.to_string(),
                None => "none".to_string(),
            },
            "llm.max_retries" => self.llm.max_retries.to_string(),
            "bot.llm_cooldown_secs" => self.bot.llm_cooldown_secs.to_string(),
            "bot.edit_interval_ms" => self.bot.edit_interval_ms.to_string(),
            "bot.mention_replies_in_thread" => self.bot.mention_replies_in_thread.to_string(),
            "bot.answer_cache_secs" => self.bot.answer_cache_secs.to_string(),
            "bot.store_path" => self.bot.store_path.clone(),
            "bot.retention_days" => self.bot.retention_days.to_string(),
            "bot.user_requests_per_day" => self.bot.user_requests_per_day.to_string(),
            "bot.user_tokens_per_day" => self.bot.user_tokens_per_day.to_string(),
            "bot.guild_requests_per_day" => self.bot.guild_requests_per_day.to_string(),
            "bot.guild_tokens_per_day" => self.bot.guild_tokens_per_day.to_string(),
            "discord.guild_id" => self
                .discord
                .guild_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            "discord.api_base" => self.discord.api_base.clone(),
            "discord.shards" => self.discord.shards.clone(),
            "http.addr" => self
                .http
                .addr
                .map(|addr| addr.to_string())
                .unwrap_or_default(),
            "http.max_body_bytes" => self.http.max_body_bytes.to_string(),
            "http.replay_window_secs" => self.http.replay_window_secs.to_string(),
            "metrics.addr" => self
                .metrics
                .addr
                .map(|addr| addr.to_string())
                .unwrap_or_default(),
            "log.format" => match self.log.format {
                LogFormat::Text => "text".to_string(),
                LogFormat::Json => "json".to_string(),
            },
            "log.level" => self.log.level.clone(),
            "reload.watch" => self.reload.watch.to_string(),
            "reload.debounce_ms" => self.reload.debounce_ms.to_string(),
            _ => return None,
        };
        Some(text)
    }

    /// Every setting with its value (secrets as `***`) and where it came from, in [`KEYS`] order
    /// followed by the secrets: what `guidebot config check` prints.
    pub fn report(&self) -> Vec<ReportLine> {
        let mut lines: Vec<ReportLine> = KEYS
            .iter()
            .map(|spec| ReportLine {
                key: spec.key.to_string(),
                env: spec.env.to_string(),
                value: self.value_text(spec.key).unwrap_or_default(),
                source: self
                    .sources
                    .get(spec.key)
                    .cloned()
                    .unwrap_or(Source::Default),
            })
            .collect();
        for (var, secret) in [
            (ENV_DISCORD_TOKEN, &self.secrets.discord_token),
            (ENV_DISCORD_PUBLIC_KEY, &self.secrets.discord_public_key),
            (ENV_API_KEY, &self.secrets.llm_api_key),
            (ENV_ID_SALT, &self.secrets.id_salt),
        ] {
            lines.push(ReportLine {
                key: format!("secret {var}"),
                env: format!("{var} or {var}{FILE_SUFFIX}"),
                value: match secret {
                    Some(secret) => secret.to_string(),
                    None => "(not set)".to_string(),
                },
                source: self.sources.get(var).cloned().unwrap_or(Source::Default),
            });
        }
        lines
    }
}

/// One line of `guidebot config check`: a key, its variable, its value (masked for secrets) and
/// its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportLine {
    /// `section.key`, or `secret VAR`.
    pub key: String,
    /// The environment variable that sets it.
    pub env: String,
    /// The effective value as text; `***` for a set secret.
    pub value: String,
    /// Default, file (with line) or env (with the variable).
    pub source: Source,
}

/// Builds the variables `LlmSettings::from_env_vars` reads from the merged `[llm]` values, so the LLM
/// module's validation (one place) applies to file values too.
fn llm_settings_from(
    llm: &LlmConfig,
    key: Option<&Secret>,
) -> Result<Option<LlmSettings>, crate::llm::LlmConfigError> {
    if llm.provider.is_empty() {
        return Ok(None);
    }
    let mut vars = HashMap::new();
    vars.insert(ENV_PROVIDER.to_string(), llm.provider.clone());
    vars.insert(ENV_MODEL.to_string(), llm.model.clone());
    if !llm.base_url.is_empty() {
        vars.insert(ENV_BASE_URL.to_string(), llm.base_url.clone());
    }
    vars.insert(ENV_TIMEOUT.to_string(), llm.timeout_secs.to_string());
    vars.insert(ENV_MAX_TOKENS.to_string(), llm.max_tokens.to_string());
    vars.insert(
        ENV_TEMPERATURE.to_string(),
        llm.temperature
            .map(|t| t.to_string())
            .unwrap_or_else(|| "none".to_string()),
    );
    vars.insert(ENV_MAX_RETRIES.to_string(), llm.max_retries.to_string());
    if let Some(key) = key {
        vars.insert(ENV_API_KEY.to_string(), key.expose().to_string());
    }
    LlmSettings::from_env_vars(&vars)
}

/// Every environment variable the configuration reads (settings, secrets and their `_FILE` forms,
/// `GUIDEBOT_CONFIG`, the provider-specific key fallbacks). The deploy artifacts may use only these.
pub fn known_env_vars() -> Vec<String> {
    let mut vars: Vec<String> = KEYS.iter().map(|spec| spec.env.to_string()).collect();
    for var in SECRET_VARS {
        vars.push(var.to_string());
        vars.push(format!("{var}{FILE_SUFFIX}"));
    }
    vars.extend(FALLBACK_KEY_VARS.iter().map(|var| var.to_string()));
    vars.push(ENV_CONFIG.to_string());
    vars
}

fn nonzero(value: u64) -> Option<u64> {
    (value > 0).then_some(value)
}
