//! One typed configuration for every command: built-in defaults, then an optional TOML file
//! (`--config FILE` or `GUIDEBOT_CONFIG`), then environment variables (`GUIDEBOT_*`, and the
//! Discord-standard `DISCORD_*` names), then command-line flags (`--corpus`, `--index`, ...).
//!
//! Each setting is declared once, in the [`settings!`] list below: its key, variable, default,
//! reader (which also validates it, with one message) and one line of documentation. The file
//! schema, `config check`'s provenance report and `deploy/guidebot.example.toml` (checked by a
//! test) all follow from that list. Secrets are never read from the file: only from a variable or
//! a file named by `<VAR>_FILE`. Every problem is reported at once, with file and line for file
//! values.
//!
//! This module is wiring at the top of the crate: the parts below it never read it; they get
//! their own settings types through the conversions in [`parts`].

mod layers;
pub mod parts;

use crate::llm::config::{parse_provider, parse_temperature};
use crate::llm::{LlmConfigError, LlmSettings, ProviderKind};
use crate::store::StoreTarget;
use crate::telemetry::LogFormat;
use crate::transport::gateway::{GatewaySettings, ShardPlan};
use crate::util::parse::{addr, display_text, flag, folder, postgres_url, seconds, text, url};
use crate::util::parse::{whole, Text};
pub use crate::util::secret::FILE_SUFFIX;
use crate::util::secret::{mask_url_credentials, Secret};
use crate::util::text::non_empty;
use layers::{id, Layers};
pub use layers::{ConfigError, Problem, Source};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variable naming the TOML file when `--config` is not given.
pub const ENV_CONFIG: &str = "GUIDEBOT_CONFIG";
/// The environment as the loaders take it, variable to value (`std::env::vars().collect()`).
pub type Env = HashMap<String, String>;

/// One setting as the file, the environment and the docs know it. Exists so docs, `config
/// check` and the tests share one list ([`KEYS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// `section.name` as written in the TOML file.
    pub key: &'static str,
    /// The environment variable that overrides the file.
    pub env: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A value given on the command line, the last layer (`--corpus DIR` sets `paths.corpus_dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The [`KEYS`] key it sets.
    pub key: &'static str,
    /// The flag as typed, for messages and provenance (`--corpus`).
    pub flag: &'static str,
    /// Its value as text, read like an environment variable.
    pub value: String,
}

/// Declares every setting and every secret once: the section structs, [`KEYS`], [`Secrets`],
/// [`SECRET_VARS`], the loader and the text of each value (for the report and the example file)
/// are all generated from this one list.
macro_rules! settings {
    (secrets { $( $secret:ident: $var:literal refused as $file_key:literal, $check:expr, $secret_doc:literal; )* }
    $( $section:ident: $Section:ident $sdoc:literal {
        $( $field:ident: $ty:ty = $default:expr, $env:literal, $read:expr, $doc:literal; )*
    } )*) => {
        $(
            #[doc = $sdoc]
            #[derive(Debug, Clone, PartialEq, Serialize)]
            pub struct $Section { $( #[doc = $doc] pub $field: $ty, )* }
        )*

        /// Every file setting, in the order of the example file.
        pub const KEYS: &[KeySpec] = &[$($(KeySpec {
            key: concat!(stringify!($section), ".", stringify!($field)), env: $env, doc: $doc,
        },)*)*];

        /// Secrets, from the environment or `<VAR>_FILE` only. Every field prints as `***`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize)]
        pub struct Secrets { $( #[doc = $secret_doc] pub $secret: Option<Secret>, )* }

        /// The secret variables, each with the file key that is refused in its place.
        pub const SECRET_VARS: &[(&str, &str)] = &[$(($var, $file_key),)*];

        /// The effective configuration: read it through the sections or the conversions in
        /// [`parts`]. Build it with [`Config::load`].
        #[derive(Debug, Clone, Serialize)]
        pub struct Config {
            $( #[doc = $sdoc] pub $section: $Section, )*
            /// Secrets (masked when printed).
            pub secrets: Secrets,
            /// The TOML file read, if any.
            pub file: Option<PathBuf>,
            /// `GUIDEBOT_*` variables that are set but mean nothing (typos), for warnings.
            pub unknown_vars: Vec<String>,
            #[serde(skip)] sources: BTreeMap<&'static str, Source>,
        }

        impl Config {
            /// Every setting through the layers, then every secret (problems in that order).
            fn read(layers: &mut Layers, file: Option<&Path>, env: &Env) -> Config {
                Config {
                    $($section: $Section { $( $field: layers.pick(
                        concat!(stringify!($section), ".", stringify!($field)), $default, $read,
                    ), )* },)*
                    secrets: Secrets { $( $secret: layers.secret($var, $var, $check), )* },
                    file: file.map(Path::to_path_buf), unknown_vars: unknown_env_vars(env), sources: BTreeMap::new(),
                }
            }

            /// The value of one [`KEYS`] key as text, as a variable would hold it (`""` for unset
            /// optional values); `None` for an unknown key.
            pub fn value_text(&self, key: &str) -> Option<String> {
                match key {
                    $($( concat!(stringify!($section), ".", stringify!($field)) =>
                        Some(self.$section.$field.text()), )*)*
                    _ => None,
                }
            }
        }
    };
}

settings! {
    secrets {
        discord_token: "DISCORD_TOKEN" refused as "discord.token", GatewaySettings::check_token,
            "`DISCORD_TOKEN`: the gateway's bot token.";
        discord_public_key: "DISCORD_PUBLIC_KEY" refused as "discord.public_key", |_| Ok(()),
            "`DISCORD_PUBLIC_KEY`: verifies signed HTTP interactions.";
        llm_api_key: "GUIDEBOT_LLM_API_KEY" refused as "llm.api_key", |_| Ok(()),
            "`GUIDEBOT_LLM_API_KEY` (or `ANTHROPIC_API_KEY` / `OPENAI_API_KEY`).";
        id_salt: "GUIDEBOT_ID_SALT" refused as "bot.id_salt", |_| Ok(()),
            "`GUIDEBOT_ID_SALT`: salt for hashing Discord ids before storage.";
        store_password: "GUIDEBOT_STORE_PASSWORD" refused as "bot.store_password", |_| Ok(()),
            "`GUIDEBOT_STORE_PASSWORD`: the PostgreSQL password for `bot.store_url`.";
    }
    paths: PathsConfig "`[paths]`: where the guides and the index live." {
        corpus_dir: PathBuf = "corpus".into(), "GUIDEBOT_CORPUS_DIR", folder,
            "Folder holding the guides (*.md) and vocabulary.toml (also --corpus DIR).";
        index_dir: PathBuf = "index".into(), "GUIDEBOT_INDEX_DIR", folder,
            "Folder for the search index; rebuilt when stale or damaged; opened in memory when read-only (also --index DIR).";
        max_guide_bytes: u64 = crate::corpus::DEFAULT_MAX_FILE_BYTES, "GUIDEBOT_MAX_GUIDE_BYTES", whole(1024, 1 << 30),
            "Largest guide file read, in bytes; a larger one is an error naming it (1024-1073741824).";
        max_corpus_bytes: u64 = crate::corpus::DEFAULT_MAX_CORPUS_BYTES, "GUIDEBOT_MAX_CORPUS_BYTES", whole(1024, 1 << 40),
            "Largest corpus (every guide and data file together), in bytes: memory grows with it; a larger one is an error (1024-1099511627776).";
    }
    llm: LlmConfig "`[llm]` as configured; the checked form is [`Config::llm_settings`]." {
        provider: Option<ProviderKind> = None, "GUIDEBOT_LLM_PROVIDER", parse_provider,
            "\"\" (extractive answers only), \"anthropic\", or \"openai\" (any OpenAI-compatible server).";
        model: String = String::new(), "GUIDEBOT_LLM_MODEL", text,
            "Model name, required with a provider, e.g. \"claude-sonnet-4-5\" or \"llama3.1:8b\".";
        base_url: String = String::new(), "GUIDEBOT_LLM_BASE_URL", url(true),
            "\"\" for the provider's public API, or e.g. \"http://ollama:11434\".";
        timeout_secs: f64 = 30.0, "GUIDEBOT_LLM_TIMEOUT_SECS", seconds(crate::llm::config::MAX_TIMEOUT_SECS),
            "Per-request timeout in seconds (0 < t <= 600).";
        max_tokens: u32 = crate::llm::config::DEFAULT_MAX_TOKENS, "GUIDEBOT_LLM_MAX_TOKENS", whole(1, 100_000),
            "Upper bound on generated tokens.";
        temperature: Option<f32> = Some(crate::llm::config::DEFAULT_TEMPERATURE), "GUIDEBOT_LLM_TEMPERATURE", parse_temperature,
            "Sampling temperature (0-1 for anthropic, 0-2 for openai), or \"none\" to omit it.";
        max_retries: u32 = crate::llm::config::DEFAULT_MAX_RETRIES, "GUIDEBOT_LLM_MAX_RETRIES", whole(0, crate::llm::config::MAX_RETRIES_LIMIT),
            "Retries after the first attempt on 429/5xx/timeouts (0-10).";
        whole_guide_tokens: u64 = 0, "GUIDEBOT_LLM_WHOLE_GUIDE_TOKENS", whole(0, 1_000_000),
            "0 = send the top passages; N (e.g. 30000): when every guide together fits in N tokens, send them all in document order, cached by the provider (the bundled guide is about 4000).";
        reasoning_model: bool = false, "GUIDEBOT_LLM_REASONING_MODEL", flag,
            "openai only: true for OpenAI reasoning models (o1, o3, o4-mini, gpt-5): sends max_completion_tokens, no temperature. vLLM and Ollama take the default.";
    }
    bot: BotConfig "`[bot]`: behaviour shared by the gateway and the HTTP endpoint." {
        llm_cooldown_secs: u64 = 20, "GUIDEBOT_BOT_LLM_COOLDOWN_SECS", whole(0, 86_400),
            "Per-user minimum seconds between two LLM answers; inside it the answer is extractive.";
        edit_interval_ms: u64 = 1200, "GUIDEBOT_BOT_EDIT_INTERVAL_MS", whole(250, 60_000),
            "Minimum milliseconds between two edits of a streaming answer (Discord rate-limits edits).";
        mention_replies_in_thread: bool = false, "GUIDEBOT_MENTION_THREADS", flag,
            "Answer @mentions in a new thread instead of a reply.";
        history_turns: u64 = 3, "GUIDEBOT_BOT_HISTORY_TURNS", whole(1, 20),
            "Earlier turns of a thread or reply chain a follow-up is read with (1-20).";
        history_minutes: u64 = 30, "GUIDEBOT_BOT_HISTORY_MINUTES", whole(1, 1440),
            "Turns older than this many minutes no longer count for follow-ups (1-1440).";
        helper_role_id: Option<u64> = None, "GUIDEBOT_HELPER_ROLE_ID", id("a role id (Developer Mode in Discord, Server Settings, Roles, right-click the role, Copy Role ID), or \"\" for no hand-off"),
            "\"\" = no hand-off; a role id: answers get a \"Still need help?\" button that pings this role (and only it) in the thread.";
        channels_path: String = "guidebot-channels.json".into(), "GUIDEBOT_CHANNELS_PATH", text,
            "JSON file keeping each server's channel modes set by /guidebot channel (\"\" keeps them in memory only).";
        answer_cache_secs: u64 = 21_600, "GUIDEBOT_BOT_ANSWER_CACHE_SECS", whole(0, 2_592_000),
            "Seconds an LLM answer is served from the answer cache (0 disables).";
        store_path: String = "guidebot.sqlite".into(), "GUIDEBOT_STORE_PATH", text,
            "SQLite file for feedback, analytics, budgets and the answer cache (\"\" disables); unused when bot.store_url is set.";
        store_url: String = String::new(), "GUIDEBOT_STORE_URL", postgres_url,
            "\"\" = the SQLite file above; \"postgres://user@host:5432/db\" = PostgreSQL shared by every replica. The password comes from GUIDEBOT_STORE_PASSWORD (or _FILE), or from the URL only when GUIDEBOT_STORE_URL sets it.";
        retention_days: u64 = 90, "GUIDEBOT_BOT_RETENTION_DAYS", whole(1, 3650),
            "Days questions, feedback, the answer cache and conversation history are kept.";
        user_requests_per_day: u64 = 0, "GUIDEBOT_BOT_USER_REQUESTS_PER_DAY", whole(0, 1_000_000),
            "LLM answers per user per day (0 = unlimited; over budget the answer is extractive).";
        user_tokens_per_day: u64 = 0, "GUIDEBOT_BOT_USER_TOKENS_PER_DAY", whole(0, 1_000_000_000),
            "LLM tokens per user per day (0 = unlimited).";
        guild_requests_per_day: u64 = 0, "GUIDEBOT_BOT_GUILD_REQUESTS_PER_DAY", whole(0, 1_000_000),
            "LLM answers per server per day (0 = unlimited).";
        guild_tokens_per_day: u64 = 0, "GUIDEBOT_BOT_GUILD_TOKENS_PER_DAY", whole(0, 1_000_000_000),
            "LLM tokens per server per day (0 = unlimited).";
    }
    discord: DiscordConfig "`[discord]`: where and how to reach Discord (the token is a secret)." {
        guild_id: Option<u64> = None, "DISCORD_GUILD_ID", id("a server id (Developer Mode in Discord, right-click the server, Copy Server ID), or \"\" to register commands globally"),
            "\"\" registers slash commands globally; a server id registers them there only (instant).";
        api_base: String = crate::transport::DISCORD_API_BASE.into(), "DISCORD_API_BASE", url(false),
            "Discord REST base URL without /api/v10 (a proxy, or a fake Discord in tests).";
        shards: ShardPlan = ShardPlan::Auto, "GUIDEBOT_SHARDS", ShardPlan::parse,
            "Gateway shards of this process: \"auto\", \"2/4\" (shard 2 of 4) or \"0-1/4\" (shards 0-1 of 4).";
        message_content_intent: bool = false, "GUIDEBOT_MESSAGE_CONTENT_INTENT", flag,
            "Ask for the privileged Message Content intent (enable it first: Developer Portal, Bot, Privileged Gateway Intents) so follow-ups in the bot's threads need no mention.";
    }
    http: HttpConfig "`[http]`: the signed interactions endpoint." {
        addr: Option<SocketAddr> = None, "GUIDEBOT_HTTP_ADDR", addr,
            "\"\" = off; IP:PORT for the interactions endpoint (also serve --http ADDR).";
        max_body_bytes: usize = 64 * 1024, "GUIDEBOT_HTTP_MAX_BODY_BYTES", whole(1024, 16 * 1024 * 1024),
            "Request bodies larger than this get 413 (1024-16777216).";
        replay_window_secs: u64 = 300, "GUIDEBOT_HTTP_REPLAY_WINDOW_SECS", whole(1, 3600),
            "Signed timestamps further than this from now get 401 (1-3600).";
        max_connections: usize = crate::transport::http::DEFAULT_MAX_CONNECTIONS, "GUIDEBOT_HTTP_MAX_CONNECTIONS", whole(1, 1_000_000),
            "Most connections open at once; more wait in the backlog. Keep it under the file limit (LimitNOFILE).";
        public_metrics: bool = false, "GUIDEBOT_HTTP_PUBLIC_METRICS", flag,
            "Also serve /metrics on the interactions port (off: use metrics.addr, not exposed publicly).";
        header_timeout_secs: u64 = crate::transport::http::DEFAULT_HEADER_TIMEOUT.as_secs(), "GUIDEBOT_HTTP_HEADER_TIMEOUT_SECS", whole(1, 300),
            "Seconds a client may take to send a request's headers, or sit idle on a kept-alive connection, before it is closed (1-300).";
        body_timeout_secs: u64 = crate::transport::http::DEFAULT_BODY_TIMEOUT.as_secs(), "GUIDEBOT_HTTP_BODY_TIMEOUT_SECS", whole(1, 300),
            "Seconds a client may take to send a whole request body after its headers; slower ones get 408 (1-300).";
    }
    metrics: MetricsConfig "`[metrics]`: Prometheus endpoint on its own address." {
        addr: Option<SocketAddr> = None, "GUIDEBOT_METRICS_ADDR", addr,
            "\"\" = off; IP:PORT for /metrics, in both modes (also serve --metrics-addr ADDR).";
    }
    log: LogConfig "`[log]`: server logs (CLI commands log warnings to stderr)." {
        format: LogFormat = LogFormat::Text, "GUIDEBOT_LOG_FORMAT", LogFormat::parse,
            "\"text\" (human-readable) or \"json\" (one object per line).";
        level: String = "info".into(), "GUIDEBOT_LOG_LEVEL", crate::telemetry::parse_level,
            "A tracing filter, e.g. \"info\" or \"guidebot=debug,info\" (RUST_LOG wins when set).";
    }
    reload: ReloadConfig "`[reload]`: live corpus reload." {
        watch: bool = true, "GUIDEBOT_RELOAD_WATCH", flag,
            "Rebuild the index when files in paths.corpus_dir change (SIGHUP always works).";
        debounce_ms: u64 = 500, "GUIDEBOT_RELOAD_DEBOUNCE_MS", whole(0, 60_000),
            "Quiet time after the last change before rebuilding, in ms (0-60000).";
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
    /// Default, file (with line), env (with the variable) or flag.
    pub source: Source,
}

impl Config {
    /// Loads defaults, then `file` (or the file named by `GUIDEBOT_CONFIG` in `env`; no file at
    /// all is fine), then the variables in `env` (pass `std::env::vars().collect()`).
    pub fn load(file: Option<&Path>, env: &Env) -> Result<Self, ConfigError> {
        Config::load_with(file, env, &[])
    }

    /// [`Config::load`] plus command-line `flags`, the last layer.
    pub fn load_with(file: Option<&Path>, env: &Env, flags: &[Flag]) -> Result<Self, ConfigError> {
        let named = env.get(ENV_CONFIG).and_then(|name| non_empty(name));
        let Some(path) = file.map(Path::to_path_buf).or(named.map(PathBuf::from)) else {
            return Config::build(None, env, flags);
        };
        let text = std::fs::read_to_string(&path).map_err(|error| {
            let fix = format!("cannot read the config file ({error}); fix the path given by --config or {ENV_CONFIG}");
            Problem::new(path.display().to_string(), fix)
        })?;
        Config::build(Some((&path, &text)), env, flags)
    }

    /// Like [`Config::load`] with the file's contents given (`path` is used in messages).
    pub fn from_toml_str(text: &str, path: &Path, env: &Env) -> Result<Self, ConfigError> {
        Config::build(Some((path, text)), env, &[])
    }

    /// Every layer, then the rules that tie settings together; all problems at once.
    fn build(file: Option<(&Path, &str)>, env: &Env, flags: &[Flag]) -> Result<Self, ConfigError> {
        let mut layers = Layers::new(env, flags);
        if let Some((path, text)) = file {
            layers.read_file(path, text)?;
        }
        let mut config = Config::read(&mut layers, file.map(|(path, _)| path), env);
        if let (None, Some(kind)) = (&config.secrets.llm_api_key, config.llm.provider) {
            let key = layers.secret("GUIDEBOT_LLM_API_KEY", kind.fallback_key_var(), |_| Ok(()));
            config.secrets.llm_api_key = key;
        }
        let mut problems = layers.problems;
        config.sources = layers.sources;
        problems.extend(config.password_in_file_url());
        if problems.is_empty() {
            problems.extend(config.build_llm_settings().err());
        }
        let error = ConfigError { problems };
        error.problems.is_empty().then_some(config).ok_or(error)
    }

    /// Builds the LLM settings from `[llm]` and the key, checking the rules that tie them together
    /// (`LlmSettings::check`) and naming the key or variable to change.
    fn build_llm_settings(&self) -> Result<Option<LlmSettings>, Problem> {
        let (llm, Some(provider)) = (&self.llm, self.llm.provider) else {
            return Ok(None);
        };
        let url = non_empty(&llm.base_url);
        let settings = LlmSettings {
            base_url: url.unwrap_or(provider.default_base_url()).into(),
            api_key: self.secrets.llm_api_key.clone(),
            timeout: std::time::Duration::from_secs_f64(llm.timeout_secs),
            max_tokens: llm.max_tokens,
            temperature: llm.temperature,
            max_retries: llm.max_retries,
            reasoning_model: llm.reasoning_model,
            whole_guide_tokens: llm.whole_guide_tokens,
            ..LlmSettings::new(provider, llm.model.trim())
        };
        let Err(error) = settings.check() else {
            return Ok(Some(settings));
        };
        let key = match error {
            LlmConfigError::MissingModel { .. } => "llm.model",
            LlmConfigError::Temperature { .. } => "llm.temperature",
            LlmConfigError::ReasoningModel { .. } => "llm.reasoning_model",
            LlmConfigError::MissingKey { .. } | LlmConfigError::UnsafeKey => "GUIDEBOT_LLM_API_KEY",
        };
        Err(self.problem(key, error.to_string()))
    }

    /// The checked LLM settings; `None` when no provider is configured (extractive answers).
    pub fn llm_settings(&self) -> Option<LlmSettings> {
        self.build_llm_settings().ok().flatten()
    }

    /// The storage file, `None` when storage is disabled (empty path).
    pub fn store_path(&self) -> Option<PathBuf> {
        non_empty(&self.bot.store_path).map(PathBuf::from)
    }

    /// The channel modes' file, `None` when they are kept in memory only.
    pub fn channels_path(&self) -> Option<PathBuf> {
        non_empty(&self.bot.channels_path).map(PathBuf::from)
    }

    /// The database: PostgreSQL when `bot.store_url` is set, else the SQLite file; `None` when
    /// storage is disabled.
    pub fn store_target(&self) -> Option<StoreTarget> {
        let Some(url) = non_empty(&self.bot.store_url).map(Secret::new) else {
            return self.store_path().map(StoreTarget::Sqlite);
        };
        let password = self.secrets.store_password.clone();
        Some(StoreTarget::Postgres { url, password })
    }

    /// A password written into `bot.store_url` in the file: refused (secrets never live in the
    /// file; set GUIDEBOT_STORE_PASSWORD or put the whole URL in GUIDEBOT_STORE_URL).
    fn password_in_file_url(&self) -> Option<Problem> {
        let url = reqwest::Url::parse(self.bot.store_url.trim()).ok()?;
        let message = "holds a password: secrets are never read from the file; remove it and set GUIDEBOT_STORE_PASSWORD (or GUIDEBOT_STORE_PASSWORD_FILE), or set the whole URL in GUIDEBOT_STORE_URL";
        let in_file = matches!(self.source("bot.store_url"), Some(Source::File { .. }));
        (in_file && url.password().is_some()).then(|| self.problem("bot.store_url", message.into()))
    }

    /// Where the value of `key` (a [`KEYS`] key, or a secret variable like `DISCORD_TOKEN`) came
    /// from; `None` for a secret that is not set.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.sources.get(key)
    }

    /// [`Config::source`], with [`Source::Default`] for what was not set.
    fn source_of(&self, key: &str) -> Source {
        self.sources.get(key).cloned().unwrap_or(Source::Default)
    }

    /// A problem with `key`, pointing where its value came from (see [`Source::location`]).
    fn problem(&self, key: &str, message: String) -> Problem {
        Problem::new(self.source_of(key).location(key), message)
    }

    /// Problems only the file system shows: a corpus folder that does not exist. `config check`
    /// reports them; commands fail on them when they load the guides.
    pub fn check_paths(&self) -> Vec<Problem> {
        let dir = &self.paths.corpus_dir;
        let message = format!("the corpus folder {} does not exist; use --corpus DIR, GUIDEBOT_CORPUS_DIR or paths.corpus_dir to name the folder holding the guides", dir.display());
        Vec::from_iter((!dir.is_dir()).then(|| self.problem("paths.corpus_dir", message)))
    }

    /// Every setting with its value (secrets as `***`) and where it came from, in [`KEYS`] order
    /// followed by the secrets: what `guidebot config check` prints.
    pub fn report(&self) -> Vec<ReportLine> {
        let settings = KEYS.iter().map(|spec| {
            let value = mask_url_credentials(&self.value_text(spec.key).unwrap_or_default());
            let source = self.source_of(spec.key);
            (spec.key.to_string(), spec.env.to_string(), value, source)
        });
        let secrets = SECRET_VARS.iter().map(|&(var, _)| {
            // A secret has a source exactly when it is set.
            let value = self.source(var).map_or("(not set)", |_| "***").to_string();
            let env = format!("{var} or {var}{FILE_SUFFIX}");
            (format!("secret {var}"), env, value, self.source_of(var))
        });
        let line = |(key, env, value, source)| ReportLine {
            key,
            env,
            value,
            source,
        };
        settings.chain(secrets).map(line).collect()
    }
}

/// Every environment variable the configuration reads (settings, `GUIDEBOT_CONFIG`, secrets and
/// the provider-specific key fallbacks with their `_FILE` forms). The deploy artifacts may use
/// only these.
pub fn known_env_vars() -> Vec<String> {
    let mut vars: Vec<String> = KEYS.iter().map(|spec| spec.env.to_string()).collect();
    let secrets = SECRET_VARS.iter().map(|(var, _)| *var);
    let kinds = [ProviderKind::Anthropic, ProviderKind::OpenAi];
    for var in secrets.chain(kinds.map(ProviderKind::fallback_key_var)) {
        vars.extend([var.to_string(), format!("{var}{FILE_SUFFIX}")]);
    }
    vars.push(ENV_CONFIG.into());
    vars
}

/// `GUIDEBOT_*` variables in `env` that no setting reads: most likely typos, which would
/// otherwise be ignored without a word.
pub fn unknown_env_vars(env: &Env) -> Vec<String> {
    let known = known_env_vars();
    let ours = env.keys().filter(|var| var.starts_with("GUIDEBOT_"));
    let unknown: BTreeSet<&String> = ours.filter(|var| !known.contains(var)).collect();
    unknown.into_iter().cloned().collect()
}

// How the configuration's own types are written (see `util::parse::Text`); an omitted temperature
// reads back as "none".
display_text!(ShardPlan, LogFormat, ProviderKind, f32: "none");
