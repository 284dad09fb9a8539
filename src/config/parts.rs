//! Each part's settings from the one [`Config`]: the engine, the dispatcher, the reloader and the
//! two transports take their own types and never read the configuration themselves.

use super::{Config, ConfigError, Problem};
use crate::bot::conversation::HistoryLimits;
use crate::bot::dispatch::{BotSettings, Budgets};
use crate::engine::EngineConfig;
use crate::reload::ReloadOptions;
use crate::transport::gateway::{default_intents, GatewaySettings};
use crate::transport::http::{HttpConfigError, HttpSettings};
use std::time::Duration;

impl From<&Config> for EngineConfig {
    fn from(config: &Config) -> Self {
        let limits = crate::corpus::LoadLimits {
            max_file_bytes: config.paths.max_guide_bytes,
            max_total_bytes: config.paths.max_corpus_bytes,
        };
        EngineConfig {
            llm: config.llm_settings(),
            limits,
            ..EngineConfig::new(&config.paths.corpus_dir, &config.paths.index_dir)
        }
    }
}

impl From<&Config> for BotSettings {
    fn from(config: &Config) -> Self {
        let bot = &config.bot;
        let limit = |value: u64| (value > 0).then_some(value);
        let salt: Option<String> = config.secrets.id_salt.as_ref().map(|s| s.expose().into());
        BotSettings {
            llm_cooldown: Duration::from_secs(bot.llm_cooldown_secs),
            edit_interval: Duration::from_millis(bot.edit_interval_ms),
            budgets: Budgets {
                user_requests_per_day: limit(bot.user_requests_per_day),
                user_tokens_per_day: limit(bot.user_tokens_per_day),
                guild_requests_per_day: limit(bot.guild_requests_per_day),
                guild_tokens_per_day: limit(bot.guild_tokens_per_day),
            },
            answer_cache_ttl: Duration::from_secs(bot.answer_cache_secs),
            id_salt: salt.unwrap_or_else(|| BotSettings::default().id_salt),
            history: HistoryLimits {
                turns: usize::try_from(bot.history_turns).unwrap_or(usize::MAX),
                max_age: Duration::from_secs(bot.history_minutes.saturating_mul(60)),
            },
            helper_role_id: bot.helper_role_id,
        }
    }
}

impl From<&Config> for ReloadOptions {
    /// The watcher as configured; SIGHUP always on.
    fn from(config: &Config) -> Self {
        let debounce = Duration::from_millis(config.reload.debounce_ms);
        ReloadOptions {
            watch_debounce: config.reload.watch.then_some(debounce),
            sighup: true,
        }
    }
}

impl TryFrom<&Config> for GatewaySettings {
    type Error = ConfigError;

    /// Fails when no token is set (the gateway cannot connect without one).
    fn try_from(config: &Config) -> Result<Self, ConfigError> {
        let fix = "is not set: create a bot at https://discord.com/developers/applications and export its token (Bot page, Reset Token)";
        let token = config.secrets.discord_token.clone();
        let token = token.ok_or_else(|| Problem::new("DISCORD_TOKEN", fix))?;
        Ok(GatewaySettings {
            token,
            guild_id: config.discord.guild_id,
            api_base: config.discord.api_base.clone(),
            shards: config.discord.shards,
            intents: default_intents(),
            mention_replies_in_thread: config.bot.mention_replies_in_thread,
            message_content_intent: config.discord.message_content_intent,
        })
    }
}

impl TryFrom<&Config> for HttpSettings {
    type Error = ConfigError;

    /// Fails when the public key is missing or not a valid Ed25519 key.
    fn try_from(config: &Config) -> Result<Self, ConfigError> {
        let invalid = |error: HttpConfigError| {
            let message = error.to_string();
            let message = message.trim_start_matches("DISCORD_PUBLIC_KEY ");
            ConfigError::from(Problem::new("DISCORD_PUBLIC_KEY", message))
        };
        let key = config.secrets.discord_public_key.as_ref();
        let key = key.ok_or_else(|| invalid(HttpConfigError::MissingPublicKey))?;
        let settings = HttpSettings {
            api_base: config.discord.api_base.clone(),
            max_body_bytes: config.http.max_body_bytes,
            replay_window: Duration::from_secs(config.http.replay_window_secs),
            max_connections: config.http.max_connections,
            metrics_on_public_port: config.http.public_metrics,
            header_timeout: Duration::from_secs(config.http.header_timeout_secs),
            body_timeout: Duration::from_secs(config.http.body_timeout_secs),
            ..HttpSettings::new(key.expose())
        };
        settings.public_key().map_err(invalid)?;
        Ok(settings)
    }
}
