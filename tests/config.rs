//! The layered configuration: defaults < TOML file < environment, secrets only from the environment
//! or `*_FILE`, every bad value named with its key or variable, and the example file documenting
//! exactly the keys that exist.

mod support;

use guidebot::bot::BotSettings;
use guidebot::config::{Config, Source, KEYS};
use guidebot::engine::EngineConfig;
use guidebot::transport::gateway::GatewaySettings;
use guidebot::transport::http::HttpSettings;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::setup::{run_cli, vars as env};

const TOKEN: &str = "MTIz.secret-token-value.xyz";

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/guidebot.example.toml")
}

fn from_toml(text: &str, vars: &[(&str, &str)]) -> Result<Config, guidebot::config::ConfigError> {
    Config::from_toml_str(text, Path::new("test.toml"), &env(vars))
}

fn problems(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match from_toml(text, vars) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error.problems.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn defaults_without_file_or_environment() {
    let config = Config::load(None, &env(&[])).unwrap();
    assert_eq!(config.paths.corpus_dir, PathBuf::from("corpus"));
    assert_eq!(config.paths.index_dir, PathBuf::from("index"));
    assert!(config.llm_settings().is_none());
    assert_eq!(config.discord.api_base, "https://discord.com");
    assert_eq!(config.discord.shards.to_string(), "auto");
    assert_eq!(config.http.addr, None);
    assert_eq!(config.http.max_body_bytes, 65536);
    assert!(config.reload.watch);
    let bot = BotSettings::from(&config);
    let defaults = BotSettings::default();
    assert_eq!(bot.llm_cooldown, defaults.llm_cooldown);
    assert_eq!(bot.edit_interval, defaults.edit_interval);
    assert_eq!(
        config.bot.mention_replies_in_thread,
        GatewaySettings::new("t").mention_replies_in_thread
    );
    for spec in KEYS {
        assert_eq!(
            config.source(spec.key),
            Some(&Source::Default),
            "{}",
            spec.key
        );
    }
}

/// Flattens a TOML document into `section.key` names.
fn keys_of(table: &toml::Table) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (section, value) in table {
        let inner = value.as_table().expect("only [section] tables at the top");
        for key in inner.keys() {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

#[test]
fn example_file_documents_exactly_the_keys_with_their_defaults_and_variables() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let documented = keys_of(&table);
    let known: BTreeSet<String> = KEYS.iter().map(|spec| spec.key.to_string()).collect();
    assert_eq!(
        documented, known,
        "deploy/guidebot.example.toml and config::KEYS differ"
    );

    // The example parses with deny_unknown_fields and every value in it is the real default.
    let from_file = Config::load(Some(&example_path()), &env(&[])).unwrap();
    let defaults = Config::load(None, &env(&[])).unwrap();
    for spec in KEYS {
        assert_eq!(
            from_file.value_text(spec.key),
            defaults.value_text(spec.key),
            "{}: the example's value is not the default",
            spec.key
        );
        assert!(
            matches!(from_file.source(spec.key), Some(Source::File { .. })),
            "{}",
            spec.key
        );
        assert!(
            text.contains(&format!("env {}", spec.env)),
            "the example does not name {} for {}",
            spec.env,
            spec.key
        );
    }
    // Every key of the struct is reachable from the file: setting it in TOML is accepted.
    for spec in KEYS {
        assert!(from_file.value_text(spec.key).is_some(), "{}", spec.key);
    }
}

#[test]
fn environment_overrides_file_overrides_defaults_and_sources_say_so() {
    let text =
        "[bot]\nllm_cooldown_secs = 5\nedit_interval_ms = 2000\n\n[discord]\nshards = \"0-1/4\"\n";
    let config = from_toml(
        text,
        &[
            ("GUIDEBOT_BOT_LLM_COOLDOWN_SECS", "7"),
            ("GUIDEBOT_HTTP_ADDR", "0.0.0.0:8080"),
            ("DISCORD_GUILD_ID", "123456789012345678"),
            ("GUIDEBOT_MENTION_THREADS", "yes"),
        ],
    )
    .unwrap();
    assert_eq!(config.bot.llm_cooldown_secs, 7);
    assert_eq!(config.bot.edit_interval_ms, 2000);
    assert_eq!(config.discord.shards.to_string(), "0-1/4");
    assert_eq!(config.http.addr, Some("0.0.0.0:8080".parse().unwrap()));
    assert_eq!(config.discord.guild_id, Some(123456789012345678));
    assert!(config.bot.mention_replies_in_thread);
    assert_eq!(
        config.source("bot.llm_cooldown_secs"),
        Some(&Source::Env {
            var: "GUIDEBOT_BOT_LLM_COOLDOWN_SECS".into()
        })
    );
    assert_eq!(
        config.source("bot.edit_interval_ms"),
        Some(&Source::File {
            path: "test.toml".into(),
            line: 3
        })
    );
    assert_eq!(config.source("log.level"), Some(&Source::Default));
    assert_eq!(
        BotSettings::from(&config).llm_cooldown,
        Duration::from_secs(7)
    );
    assert_eq!(
        BotSettings::from(&config).edit_interval,
        Duration::from_millis(2000)
    );

    let value = |key: &str| config.value_text(key).unwrap();
    assert_eq!(value("discord.shards"), "0-1/4");
    assert_eq!(value("http.addr"), "0.0.0.0:8080");
    assert_eq!(value("metrics.addr"), "");
}

#[test]
fn every_bad_file_value_names_file_line_and_key() {
    let cases = [
        ("[paths]\ncorpus_dir = \"\"", "paths.corpus_dir"),
        ("[llm]\nprovider = \"gemini\"", "llm.provider"),
        ("[llm]\nbase_url = \"ollama:11434\"", "llm.base_url"),
        ("[llm]\ntimeout_secs = 0", "llm.timeout_secs"),
        ("[llm]\nmax_tokens = 0", "llm.max_tokens"),
        ("[llm]\ntemperature = \"hot\"", "llm.temperature"),
        ("[llm]\ntemperature = 7", "llm.temperature"),
        ("[llm]\nmax_retries = 50", "llm.max_retries"),
        ("[bot]\nllm_cooldown_secs = 999999", "bot.llm_cooldown_secs"),
        ("[bot]\nedit_interval_ms = 10", "bot.edit_interval_ms"),
        ("[discord]\nguild_id = \"my server\"", "discord.guild_id"),
        ("[discord]\napi_base = \"discord.com\"", "discord.api_base"),
        ("[discord]\nshards = \"4/4\"", "discord.shards"),
        ("[discord]\nshards = \"half\"", "discord.shards"),
        ("[http]\naddr = \"localhost\"", "http.addr"),
        ("[http]\nmax_body_bytes = 10", "http.max_body_bytes"),
        ("[http]\nreplay_window_secs = 0", "http.replay_window_secs"),
        ("[metrics]\naddr = \":9000\"", "metrics.addr"),
        ("[log]\nformat = \"xml\"", "log.format"),
        ("[log]\nlevel = \"guidebot=loud\"", "log.level"),
        ("[reload]\ndebounce_ms = 100000", "reload.debounce_ms"),
    ];
    for (text, key) in cases {
        let found = problems(&format!("# header\n{text}\n"), &[]);
        assert_eq!(found.len(), 1, "{text}: {found:?}");
        assert!(
            found[0].starts_with(&format!("test.toml:3: {key}: ")),
            "{text}: {}",
            found[0]
        );
        assert!(
            found[0].contains("use") || found[0].contains("must"),
            "no fix in {}",
            found[0]
        );
    }
}

#[test]
fn every_bad_environment_value_names_the_variable() {
    for spec in KEYS {
        let bad = match spec.key {
            "paths.corpus_dir" | "paths.index_dir" | "llm.model" | "bot.store_path"
            | "bot.channels_path" => continue,
            "llm.provider" => "gemini",
            "llm.base_url" | "discord.api_base" => "not a url",
            "bot.mention_replies_in_thread" | "reload.watch" | "discord.message_content_intent" => {
                "maybe"
            }
            "log.level" => "guidebot=loud",
            _ => "-1x",
        };
        let found = problems("", &[(spec.env, bad)]);
        assert_eq!(found.len(), 1, "{}: {found:?}", spec.env);
        assert!(
            found[0].starts_with(&format!("{}: ", spec.env)),
            "{}",
            found[0]
        );
    }
}

#[test]
fn type_errors_and_unknown_keys_point_at_the_line() {
    let found = problems("[bot]\n\nllm_cooldown_secs = \"soon\"\n", &[]);
    assert!(found[0].starts_with("test.toml:3"), "{found:?}");
    let found = problems("[bot]\nllm_coldown_secs = 5\n", &[]);
    assert!(found[0].starts_with("test.toml:2"), "{found:?}");
    assert!(found[0].contains("llm_coldown_secs"), "{found:?}");
    assert!(found[0].contains("guidebot.example.toml"), "{found:?}");
    let found = problems("[server]\nport = 1\n", &[]);
    assert!(found[0].starts_with("test.toml:1"), "{found:?}");
    let found = problems("[bot\n", &[]);
    assert!(found[0].starts_with("test.toml:1"), "{found:?}");
}

#[test]
fn several_problems_are_reported_together() {
    let found = problems(
        "[bot]\nedit_interval_ms = 1\n[log]\nformat = \"xml\"\n",
        &[("GUIDEBOT_SHARDS", "x")],
    );
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn secrets_in_the_file_are_refused_with_the_variable_to_use() {
    for (text, var) in [
        ("[llm]\napi_key = \"sk-123\"", "GUIDEBOT_LLM_API_KEY"),
        ("[discord]\ntoken = \"abc\"", "DISCORD_TOKEN"),
        ("[discord]\npublic_key = \"abc\"", "DISCORD_PUBLIC_KEY"),
        ("[bot]\nid_salt = \"abc\"", "GUIDEBOT_ID_SALT"),
    ] {
        let found = problems(text, &[]);
        assert!(found[0].starts_with("test.toml:2: "), "{found:?}");
        assert!(found[0].contains(&format!("{var}_FILE")), "{found:?}");
        assert!(!found[0].contains("sk-123"));
    }
}

#[test]
fn secrets_come_from_variables_or_files_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let config = from_toml(
        "",
        &[
            ("DISCORD_TOKEN_FILE", token_file.to_str().unwrap()),
            ("DISCORD_PUBLIC_KEY", "ab12"),
        ],
    )
    .unwrap();
    let token = config.secrets.discord_token.as_ref().unwrap();
    assert_eq!(token.expose(), TOKEN);
    assert_eq!(format!("{token}"), "***");
    assert_eq!(
        config.source("DISCORD_TOKEN"),
        Some(&Source::Env {
            var: "DISCORD_TOKEN_FILE".into()
        })
    );
    let printed = format!(
        "{config:?}{}{:?}",
        serde_json::to_string(&config).unwrap(),
        config.report()
    );
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(!printed.contains("ab12"), "{printed}");
    assert_eq!(
        config.secrets.discord_token.as_ref().unwrap().expose(),
        TOKEN
    );

    let found = problems(
        "",
        &[
            ("DISCORD_TOKEN", TOKEN),
            ("DISCORD_TOKEN_FILE", token_file.to_str().unwrap()),
        ],
    );
    assert!(found[0].starts_with("DISCORD_TOKEN: both"), "{found:?}");
    let found = problems("", &[("GUIDEBOT_LLM_API_KEY_FILE", "/nonexistent/key")]);
    assert!(
        found[0].starts_with("GUIDEBOT_LLM_API_KEY_FILE: cannot read"),
        "{found:?}"
    );
}

#[test]
fn llm_settings_reuse_the_llm_module_rules_and_variables() {
    // The GUIDEBOT_LLM_* variables keep working exactly as before.
    let config = from_toml(
        "",
        &[
            ("GUIDEBOT_LLM_PROVIDER", "anthropic"),
            ("GUIDEBOT_LLM_MODEL", "claude-sonnet-4-5"),
            ("ANTHROPIC_API_KEY", "sk-ant-xyz"),
        ],
    )
    .unwrap();
    let settings = config.llm_settings().unwrap();
    assert_eq!(settings.model, "claude-sonnet-4-5");
    assert_eq!(settings.api_key.unwrap().expose(), "sk-ant-xyz");
    assert_eq!(settings.base_url, "https://api.anthropic.com");
    assert!(EngineConfig::from(&config).llm.is_some());

    // File values, key from a secret file.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "sk-file\n").unwrap();
    let config = from_toml(
        "[llm]\nprovider = \"openai\"\nmodel = \"llama3.1:8b\"\nbase_url = \"http://ollama:11434/\"\ntemperature = \"none\"\ntimeout_secs = 12.5\n",
        &[("GUIDEBOT_LLM_API_KEY_FILE", key_file.to_str().unwrap())],
    )
    .unwrap();
    let settings = config.llm_settings().unwrap();
    assert_eq!(settings.base_url, "http://ollama:11434");
    assert_eq!(settings.temperature, None);
    assert_eq!(settings.timeout, Duration::from_millis(12_500));
    assert_eq!(settings.api_key.unwrap().expose(), "sk-file");

    // Provider-specific rules, reported at the file line of the value.
    let found = problems(
        "[llm]\nprovider = \"anthropic\"\nmodel = \"claude\"\ntemperature = 1.5\n",
        &[("GUIDEBOT_LLM_API_KEY", "sk")],
    );
    assert!(
        found[0].starts_with("test.toml:4: llm.temperature"),
        "{found:?}"
    );
    let found = problems("[llm]\nprovider = \"anthropic\"\nmodel = \"claude\"\n", &[]);
    assert!(found[0].starts_with("GUIDEBOT_LLM_API_KEY"), "{found:?}");
    let found = problems("[llm]\nprovider = \"openai\"\n", &[]);
    assert!(found[0].starts_with("llm.model"), "{found:?}");
}

#[test]
fn config_file_from_the_environment_and_a_missing_file() {
    let config = Config::load(
        None,
        &env(&[("GUIDEBOT_CONFIG", example_path().to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(config.file, Some(example_path()));
    let error = Config::load(Some(Path::new("/nonexistent/guidebot.toml")), &env(&[])).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/guidebot.toml"));
    assert!(error.to_string().contains("--config"));
}

#[tokio::test]
async fn config_check_prints_values_sources_and_masks_secrets() {
    let example = example_path();
    let (result, out) = run_cli(
        &[
            "guidebot",
            "config",
            "check",
            "--config",
            example.to_str().unwrap(),
        ],
        &[("DISCORD_TOKEN", TOKEN), ("GUIDEBOT_LOG_FORMAT", "json")],
    )
    .await;
    result.unwrap();
    assert!(out.starts_with("Configuration OK (file "), "{out}");
    assert!(out.contains("log.format"), "{out}");
    assert!(out.contains("env GUIDEBOT_LOG_FORMAT"), "{out}");
    assert!(out.contains("guidebot.example.toml:"), "{out}");
    assert!(out.contains("secret DISCORD_TOKEN"), "{out}");
    assert!(!out.contains(TOKEN), "{out}");

    let (result, out) = run_cli(
        &["guidebot", "config", "check", "--json"],
        &[("DISCORD_TOKEN", TOKEN)],
    )
    .await;
    result.unwrap();
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["ok"], true);
    // Only the masked report is printed (a raw dump of the configuration could carry credentials
    // inside a base URL).
    assert!(value.get("config").is_none());
    let token_line = value["settings"]
        .as_array()
        .and_then(|lines| {
            lines
                .iter()
                .find(|line| line["key"] == "secret DISCORD_TOKEN")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(token_line["value"], "***", "{value}");
    assert!(!out.contains(TOKEN));

    let (result, out) = run_cli(
        &["guidebot", "config", "check", "--json"],
        &[("GUIDEBOT_SHARDS", "9/2")],
    )
    .await;
    let error = result.unwrap_err();
    assert!(error.to_string().contains("GUIDEBOT_SHARDS"), "{error}");
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["problems"][0]["location"], "GUIDEBOT_SHARDS");
}

/// The example file's settings, generated from their one declaration (`config::KEYS` and the
/// defaults) below the file's own header comment.
fn generated_example(header: &str) -> String {
    let defaults = Config::load(None, &env(&[])).unwrap();
    let mut out = header.to_string();
    let mut section = "";
    for spec in KEYS {
        let (this, name) = spec.key.split_once('.').unwrap();
        if this != section {
            out.push_str(&format!("\n[{this}]\n"));
            section = this;
        }
        let value = defaults.value_text(spec.key).unwrap();
        let bare = value.parse::<f64>().is_ok() || value == "true" || value == "false";
        let value = if bare {
            value
        } else {
            toml::Value::String(value).to_string()
        };
        let doc = spec.doc;
        out.push_str(&format!(
            "# {doc}\n#   env {}\n{name} = {value}\n",
            spec.env
        ));
    }
    out
}

/// The example file is generated from the settings' one declaration; set GUIDEBOT_WRITE_EXAMPLE=1
/// to rewrite it after changing a setting.
#[test]
fn example_file_is_the_generated_one() {
    let text = std::fs::read_to_string(example_path()).unwrap();
    let header = &text[..text.find("\n[paths]").expect("a [paths] section")];
    let generated = generated_example(header);
    if std::env::var_os("GUIDEBOT_WRITE_EXAMPLE").is_some() {
        std::fs::write(example_path(), &generated).unwrap();
    }
    assert!(
        text == generated,
        "deploy/guidebot.example.toml is stale: run GUIDEBOT_WRITE_EXAMPLE=1 cargo test --test config"
    );
}

#[test]
fn flags_are_the_last_layer() {
    let flags = [guidebot::config::Flag {
        key: "paths.corpus_dir",
        flag: "--corpus",
        value: "/data/guides".to_string(),
    }];
    let config = Config::load_with(
        Some(&example_path()),
        &env(&[("GUIDEBOT_CORPUS_DIR", "/env/guides")]),
        &flags,
    )
    .unwrap();
    assert_eq!(config.paths.corpus_dir, PathBuf::from("/data/guides"));
    assert_eq!(
        config.source("paths.corpus_dir"),
        Some(&Source::Flag {
            flag: "--corpus".into()
        })
    );
    let bad = [guidebot::config::Flag {
        key: "http.addr",
        flag: "--http",
        value: "nowhere".to_string(),
    }];
    let error = Config::load_with(None, &env(&[]), &bad).unwrap_err();
    assert!(error.problems[0].location == "--http", "{error}");
}

#[test]
fn missing_corpus_folder_and_unknown_variables_are_reported() {
    let config = Config::load(
        None,
        &env(&[
            ("GUIDEBOT_CORPUS_DIR", "/nonexistent/guides"),
            ("GUIDEBOT_LLM_MODLE", "typo"),
        ]),
    )
    .unwrap();
    let problems = config.check_paths();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].location, "GUIDEBOT_CORPUS_DIR");
    assert!(
        problems[0].message.contains("/nonexistent/guides"),
        "{problems:?}"
    );
    assert_eq!(config.unknown_vars, vec!["GUIDEBOT_LLM_MODLE".to_string()]);
    assert!(Config::load(None, &env(&[]))
        .unwrap()
        .check_paths()
        .is_empty());
}

/// What `LlmSettings::from_env_vars` used to check, now through the one configuration path.
#[test]
fn llm_variables_defaults_fallback_keys_and_rules() {
    let llm = |vars: &[(&str, &str)]| from_toml("", vars).map(|config| config.llm_settings());
    assert!(llm(&[]).unwrap().is_none());
    assert!(
        llm(&[("GUIDEBOT_LLM_PROVIDER", "  "), ("GUIDEBOT_LLM_MODEL", "m")])
            .unwrap()
            .is_none()
    );
    let s = llm(&[
        ("GUIDEBOT_LLM_PROVIDER", "Anthropic"),
        ("GUIDEBOT_LLM_MODEL", "claude-sonnet-4-5"),
        ("ANTHROPIC_API_KEY", "sk-ant-test"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(s.provider, guidebot::llm::ProviderKind::Anthropic);
    assert_eq!(s.api_key.as_ref().unwrap().expose(), "sk-ant-test");
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(
        (s.max_tokens, s.temperature, s.max_retries),
        (700, Some(0.2), 2)
    );
    let s = llm(&[
        ("GUIDEBOT_LLM_PROVIDER", "openai"),
        ("GUIDEBOT_LLM_MODEL", "gpt-4.1-mini"),
        ("GUIDEBOT_LLM_API_KEY", "sk-primary"),
        ("OPENAI_API_KEY", "sk-fallback"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(s.api_key.unwrap().expose(), "sk-primary");
    let s = llm(&[
        ("GUIDEBOT_LLM_PROVIDER", "openai-compatible"),
        ("GUIDEBOT_LLM_MODEL", "llama3.1:8b"),
        ("GUIDEBOT_LLM_BASE_URL", "http://localhost:11434/"),
        ("GUIDEBOT_LLM_MAX_TOKENS", "300"),
        ("GUIDEBOT_LLM_MAX_RETRIES", "0"),
        ("ANTHROPIC_API_KEY", "not-for-openai"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(s.base_url, "http://localhost:11434");
    assert!(s.api_key.is_none());
    assert_eq!((s.max_tokens, s.max_retries), (300, 0));

    let base = [
        ("GUIDEBOT_LLM_PROVIDER", "openai"),
        ("GUIDEBOT_LLM_MODEL", "m"),
    ];
    for (var, value) in [
        ("GUIDEBOT_LLM_BASE_URL", "localhost:11434"),
        ("GUIDEBOT_LLM_BASE_URL", "ftp://example.com"),
        ("GUIDEBOT_LLM_TIMEOUT_SECS", "soon"),
        ("GUIDEBOT_LLM_TIMEOUT_SECS", "-3"),
        ("GUIDEBOT_LLM_TEMPERATURE", "2.5"),
        ("GUIDEBOT_LLM_MAX_RETRIES", "99"),
    ] {
        let mut vars = base.to_vec();
        vars.push((var, value));
        let found = problems("", &vars);
        assert!(found[0].starts_with(&format!("{var}: ")), "{found:?}");
    }
    let key = "sk-ant-SECRET-1234567890";
    let bad_key = format!("{key} with space\u{e9}");
    let found = problems(
        "",
        &[
            ("GUIDEBOT_LLM_PROVIDER", "anthropic"),
            ("GUIDEBOT_LLM_MODEL", "claude"),
            ("GUIDEBOT_LLM_API_KEY", &bad_key),
        ],
    );
    assert!(found[0].starts_with("GUIDEBOT_LLM_API_KEY"), "{found:?}");
    assert!(!found[0].contains(key), "{found:?}");
    let found = problems(
        "",
        &[
            ("GUIDEBOT_LLM_PROVIDER", "anthropic"),
            ("GUIDEBOT_LLM_MODEL", "claude"),
            ("OPENAI_API_KEY", "sk-x"),
        ],
    );
    assert!(found[0].contains("ANTHROPIC_API_KEY"), "{found:?}");
}

/// What `GatewaySettings::from_env_vars` and `HttpSettings::from_env_vars` used to check.
#[test]
fn transport_settings_come_from_the_configuration() {
    let error = GatewaySettings::try_from(&from_toml("", &[]).unwrap()).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("DISCORD_TOKEN: is not set"), "{text}");
    assert!(
        text.contains("https://discord.com/developers/applications"),
        "{text}"
    );

    let found = problems("", &[("DISCORD_TOKEN", "abc def-secret")]);
    assert!(found[0].starts_with("DISCORD_TOKEN: "), "{found:?}");
    assert!(!found[0].contains("def-secret"), "{found:?}");
    assert!(from_toml("", &[("DISCORD_TOKEN", "Bot abc")]).is_ok());

    let config = from_toml(
        "",
        &[
            ("DISCORD_TOKEN", "t"),
            ("DISCORD_GUILD_ID", "123456789012345678"),
            ("DISCORD_API_BASE", "http://127.0.0.1:9999/"),
            ("GUIDEBOT_SHARDS", "0-1/4"),
            ("GUIDEBOT_MENTION_THREADS", "yes"),
        ],
    )
    .unwrap();
    let gateway = GatewaySettings::try_from(&config).unwrap();
    assert_eq!(gateway.guild_id, Some(123_456_789_012_345_678));
    assert_eq!(gateway.api_base, "http://127.0.0.1:9999");
    assert!(!gateway.uses_discord_directly());
    assert_eq!(gateway.shards.to_string(), "0-1/4");
    assert!(gateway.mention_replies_in_thread);
    for (var, value) in [
        ("DISCORD_GUILD_ID", "my-server"),
        ("DISCORD_API_BASE", "discord.com"),
        ("GUIDEBOT_SHARDS", "0-1"),
        ("GUIDEBOT_MENTION_THREADS", "maybe"),
    ] {
        let found = problems("", &[("DISCORD_TOKEN", "t"), (var, value)]);
        assert!(found[0].starts_with(&format!("{var}: ")), "{found:?}");
    }

    const KEY: &str = "67c6bd767ca099e79efac9fcce4d2022a63bf7dea780e7f3d813f694c1597089";
    let missing = HttpSettings::try_from(&from_toml("", &[]).unwrap()).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("DISCORD_PUBLIC_KEY: is not set"),
        "{missing}"
    );
    assert!(missing.to_string().contains("General Information"));
    let bad = HttpSettings::try_from(&from_toml("", &[("DISCORD_PUBLIC_KEY", "xyz")]).unwrap());
    assert!(bad.unwrap_err().to_string().contains("DISCORD_PUBLIC_KEY"));
    let config = from_toml(
        "",
        &[
            ("DISCORD_PUBLIC_KEY", KEY),
            ("DISCORD_API_BASE", "http://127.0.0.1:9999/"),
            ("GUIDEBOT_HTTP_MAX_BODY_BYTES", "4096"),
            ("GUIDEBOT_HTTP_REPLAY_WINDOW_SECS", "60"),
        ],
    )
    .unwrap();
    let http = HttpSettings::try_from(&config).unwrap();
    assert_eq!(http.api_base, "http://127.0.0.1:9999");
    assert_eq!(http.max_body_bytes, 4096);
    assert_eq!(http.replay_window, Duration::from_secs(60));
    // Issue 14: `/metrics` stays off the public port unless `http.public_metrics` says so, and the
    // endpoint always remembers interaction ids against replays.
    assert!(!http.metrics_on_public_port);
    assert_eq!(
        http.remembered_ids,
        guidebot::transport::replay::DEFAULT_REMEMBERED_IDS
    );
    let config = from_toml(
        "[http]\npublic_metrics = true\n",
        &[("DISCORD_PUBLIC_KEY", KEY)],
    )
    .unwrap();
    assert!(
        HttpSettings::try_from(&config)
            .unwrap()
            .metrics_on_public_port
    );
}

#[test]
fn credentials_in_a_base_url_are_masked_in_the_report() {
    let config = from_toml(
        "",
        &[
            ("GUIDEBOT_LLM_PROVIDER", "openai"),
            ("GUIDEBOT_LLM_MODEL", "m"),
            (
                "GUIDEBOT_LLM_BASE_URL",
                "https://user:hunter2@proxy.example:8080/v1",
            ),
            ("GUIDEBOT_LLM_API_KEY", "k"),
        ],
    )
    .unwrap();
    let line = config
        .report()
        .into_iter()
        .find(|line| line.key == "llm.base_url")
        .unwrap();
    assert_eq!(line.value, "https://***@proxy.example:8080/v1");
    let all = format!("{:?}", config.report());
    assert!(!all.contains("hunter2"));
}

/// Issue 17: PostgreSQL is chosen by `bot.store_url` / `GUIDEBOT_STORE_URL`; its password comes
/// from the environment (`GUIDEBOT_STORE_PASSWORD`, its `_FILE`, or a URL set by the variable),
/// never from the file, and `config check` masks it.
#[test]
fn the_store_url_selects_postgres_and_its_password_stays_out_of_files_and_reports() {
    use guidebot::store::StoreTarget;
    let config = from_toml("", &[]).unwrap();
    assert_eq!(
        config.store_target(),
        Some(StoreTarget::Sqlite("guidebot.sqlite".into()))
    );

    let config = from_toml(
        "",
        &[
            (
                "GUIDEBOT_STORE_URL",
                "postgres://guidebot:hunter2@db:5432/guidebot",
            ),
            ("GUIDEBOT_STORE_PASSWORD", "s3cret-pw"),
        ],
    )
    .unwrap();
    let Some(StoreTarget::Postgres { url, password }) = config.store_target() else {
        panic!("PostgreSQL selected");
    };
    assert_eq!(url.expose(), "postgres://guidebot:hunter2@db:5432/guidebot");
    assert_eq!(password.unwrap().expose(), "s3cret-pw");
    let report = format!("{:?}", config.report());
    assert!(!report.contains("hunter2"), "{report}");
    assert!(!report.contains("s3cret-pw"), "{report}");
    assert!(
        report.contains("postgres://***@db:5432/guidebot"),
        "{report}"
    );
    assert!(
        report.contains("secret GUIDEBOT_STORE_PASSWORD"),
        "{report}"
    );

    // A password written in the file is refused, naming the variable to use.
    let found = problems(
        "[bot]\nstore_url = \"postgres://guidebot:hunter2@db/guidebot\"\n",
        &[],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("GUIDEBOT_STORE_PASSWORD"), "{}", found[0]);
    assert!(!found[0].contains("hunter2"), "{}", found[0]);
    // Without a password the file may name the database.
    let config = from_toml(
        "[bot]\nstore_url = \"postgres://guidebot@db/guidebot\"\n",
        &[("GUIDEBOT_STORE_PASSWORD_FILE", "/nonexistent/secret")],
    );
    assert!(config.is_err(), "an unreadable password file is a problem");
    // Not a PostgreSQL URL: the message shows no password.
    let found = problems("", &[("GUIDEBOT_STORE_URL", "mysql://u:hunter2@db/x")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(!found[0].contains("hunter2"), "{}", found[0]);
}

/// Issue 14: each budget setting, from the file or its variable, reaches its own allowance (a
/// user's or a server's, requests or tokens) and nothing else; 0 leaves an allowance unlimited.
#[test]
fn each_budget_setting_reaches_its_own_allowance() {
    let config = from_toml(
        "[bot]\nuser_requests_per_day = 1\nguild_tokens_per_day = 4\n",
        &[
            ("GUIDEBOT_BOT_USER_TOKENS_PER_DAY", "2"),
            ("GUIDEBOT_BOT_GUILD_REQUESTS_PER_DAY", "3"),
        ],
    )
    .unwrap();
    assert_eq!(
        BotSettings::from(&config).budgets,
        guidebot::bot::dispatch::Budgets {
            user_requests_per_day: Some(1),
            user_tokens_per_day: Some(2),
            guild_requests_per_day: Some(3),
            guild_tokens_per_day: Some(4),
        }
    );
    let unlimited = from_toml(
        "[bot]\nuser_requests_per_day = 0\nguild_tokens_per_day = 0\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        BotSettings::from(&unlimited).budgets,
        guidebot::bot::dispatch::Budgets::default()
    );
}

/// Issue 14: `paths.max_guide_bytes` (file or variable) is the engine's guide size limit.
#[test]
fn the_guide_size_limit_reaches_the_engine() {
    let config = from_toml("[paths]\nmax_guide_bytes = 4096\n", &[]).unwrap();
    assert_eq!(EngineConfig::from(&config).limits.max_file_bytes, 4096);
    let config = from_toml("", &[("GUIDEBOT_MAX_GUIDE_BYTES", "8192")]).unwrap();
    assert_eq!(EngineConfig::from(&config).limits.max_file_bytes, 8192);
}

/// Issue 14: `paths.max_corpus_bytes` (file or variable) is the engine's corpus size limit, 64 MB
/// by default; a value out of range is refused.
#[test]
fn the_corpus_size_limit_reaches_the_engine() {
    let config = from_toml("", &[]).unwrap();
    assert_eq!(
        EngineConfig::from(&config).limits.max_total_bytes,
        64 * 1024 * 1024
    );
    let config = from_toml("[paths]\nmax_corpus_bytes = 4096\n", &[]).unwrap();
    assert_eq!(EngineConfig::from(&config).limits.max_total_bytes, 4096);
    let config = from_toml("", &[("GUIDEBOT_MAX_CORPUS_BYTES", "8192")]).unwrap();
    assert_eq!(EngineConfig::from(&config).limits.max_total_bytes, 8192);
    let found = problems("[paths]\nmax_corpus_bytes = 10\n", &[]);
    assert!(found[0].contains("max_corpus_bytes"), "{found:?}");
}
