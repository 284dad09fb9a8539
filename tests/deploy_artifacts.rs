//! The files under deploy/ are checked against the binary they deploy: their YAML parses, every
//! `GUIDEBOT_*` / `DISCORD_*` variable they mention is one the configuration reads, every
//! `guidebot <command> --flag` they run exists in the CLI (for `serve`, the planned flags), and the
//! TOML they ship loads without errors. Docker and Kubernetes themselves are not available here.

use clap::CommandFactory;
use guidebot::config::{known_env_vars, Config};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// `guidebot serve` is wired by the lead after the transports merge; these are its planned flags.
const PLANNED_SERVE_FLAGS: &[&str] = &["--http", "--gateway", "--metrics-addr"];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every text file under deploy/ (recursively), plus the root .dockerignore.
fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&deploy_dir(), &mut files);
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore"));
    files.sort();
    files
}

fn yaml_files() -> Vec<PathBuf> {
    deploy_files()
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect()
}

fn load_yaml(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|error| panic!("{}: invalid YAML: {error}", path.display()))
}

#[test]
fn every_yaml_file_parses_and_kubernetes_objects_have_kind_and_name() {
    let files = yaml_files();
    assert!(files.len() >= 7, "{files:?}");
    for path in files {
        let docs = load_yaml(&path);
        assert!(!docs.is_empty(), "{}: empty", path.display());
        let in_k8s = path.parent().is_some_and(|dir| dir.ends_with("k8s"));
        for doc in docs.iter().filter(|doc| !doc.is_null()) {
            if in_k8s {
                assert!(
                    doc["apiVersion"].as_str().is_some(),
                    "{}: no apiVersion",
                    path.display()
                );
                let kind = doc["kind"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: no kind", path.display()));
                if kind != "Kustomization" {
                    assert!(
                        doc["metadata"]["name"].as_str().is_some(),
                        "{}: {kind} without a name",
                        path.display()
                    );
                }
            } else {
                assert!(
                    !doc["services"]["guidebot"].is_badvalue(),
                    "{}: no guidebot service",
                    path.display()
                );
            }
        }
    }
}

fn names_with_prefix(text: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.push(tail[..len].to_string());
        }
        rest = &tail[len.max(1)..];
    }
    names
}

#[test]
fn every_variable_the_artifacts_use_is_read_by_the_configuration() {
    let known: BTreeSet<String> = known_env_vars().into_iter().collect();
    let mut unknown = Vec::new();
    let mut seen = BTreeSet::new();
    for path in deploy_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for prefix in ["GUIDEBOT_", "DISCORD_"] {
            for name in names_with_prefix(&text, prefix) {
                // `GUIDEBOT_LLM_*` in prose names a family: it must prefix a real variable.
                let ok = if name.ends_with('_') {
                    known.iter().any(|var| var.starts_with(&name))
                } else {
                    known.contains(&name)
                };
                if !ok {
                    unknown.push(format!("{}: {name}", path.display()));
                }
                seen.insert(name);
            }
        }
    }
    assert!(unknown.is_empty(), "variables no code reads: {unknown:#?}");
    for needed in [
        "DISCORD_TOKEN_FILE",
        "DISCORD_PUBLIC_KEY_FILE",
        "GUIDEBOT_SHARDS",
        "GUIDEBOT_CONFIG",
        "GUIDEBOT_LLM_BASE_URL",
    ] {
        assert!(seen.contains(needed), "the artifacts never use {needed}");
    }
}

/// Splits a line into words the way a shell or a JSON/YAML list would separate them.
fn words(line: &str) -> Vec<String> {
    line.split(|c: char| {
        c.is_whitespace() || matches!(c, '"' | '\'' | '[' | ']' | ',' | '`' | '(' | ')')
    })
    .filter(|word| !word.is_empty())
    .map(str::to_string)
    .collect()
}

const SEPARATORS: &[&str] = &[
    ";",
    "&&",
    "||",
    "|",
    ">",
    ">/dev/null",
    "fi",
    "then",
    "else",
    "#",
];

/// `guidebot ...` invocations in the artifacts: the words after `guidebot` (or after an
/// `args:`/`CMD`/`command:` list that starts with a subcommand) up to a shell separator.
fn invocations(text: &str, subcommands: &BTreeSet<String>) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let words = words(line);
        let mut starts = Vec::new();
        for (i, word) in words.iter().enumerate() {
            if word == "guidebot" || word.ends_with("/guidebot") || word.ends_with("/guidebot\\") {
                starts.push(i + 1);
            }
        }
        if let Some(first) = words.first() {
            if matches!(first.as_str(), "args:" | "CMD" | "command:")
                && words.get(1).is_some_and(|word| subcommands.contains(word))
            {
                starts.push(1);
            }
        }
        for start in starts {
            let mut invocation = Vec::new();
            for word in &words[start.min(words.len())..] {
                if SEPARATORS.contains(&word.as_str()) || word.starts_with('>') {
                    break;
                }
                invocation.push(word.clone());
            }
            // Skip global flags with their values to find the subcommand.
            let mut i = 0;
            while i < invocation.len()
                && matches!(invocation[i].as_str(), "--corpus" | "--index" | "--config")
            {
                i += 2;
            }
            if invocation
                .get(i)
                .is_some_and(|word| subcommands.contains(word))
            {
                found.push(invocation[i..].to_vec());
            }
        }
    }
    found
}

#[test]
fn every_command_and_flag_the_artifacts_use_exists() {
    let cli = guidebot::cli::Cli::command();
    let mut subcommands: BTreeSet<String> = cli
        .get_subcommands()
        .map(|command| command.get_name().to_string())
        .collect();
    subcommands.insert("serve".to_string());
    let globals: BTreeSet<String> = cli
        .get_arguments()
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .chain(["--help".to_string(), "--version".to_string()])
        .collect();

    let mut checked = BTreeSet::new();
    let mut problems = Vec::new();
    for path in deploy_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        for invocation in invocations(&text, &subcommands) {
            let name = &invocation[0];
            let (label, allowed): (String, BTreeSet<String>) = if name == "serve" {
                (
                    "serve".to_string(),
                    PLANNED_SERVE_FLAGS
                        .iter()
                        .map(|flag| flag.to_string())
                        .collect(),
                )
            } else {
                let mut command = cli.find_subcommand(name).unwrap().clone();
                let mut label = name.clone();
                // Nested subcommands (`config check`).
                if command.has_subcommands() {
                    let Some(inner) = invocation.get(1) else {
                        problems.push(format!(
                            "{}: `guidebot {name}` without its subcommand",
                            path.display()
                        ));
                        continue;
                    };
                    match command.find_subcommand(inner) {
                        Some(found) => {
                            label = format!("{name} {inner}");
                            command = found.clone();
                        }
                        None => {
                            problems.push(format!(
                                "{}: no command `guidebot {name} {inner}`",
                                path.display()
                            ));
                            continue;
                        }
                    }
                }
                (
                    label,
                    command
                        .get_arguments()
                        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
                        .collect(),
                )
            };
            for word in invocation.iter().filter(|word| word.starts_with("--")) {
                let flag = word.split('=').next().unwrap().to_string();
                if allowed.contains(&flag) || globals.contains(&flag) {
                    checked.insert(format!("{label} {flag}"));
                } else {
                    problems.push(format!(
                        "{}: `guidebot {label}` has no flag {flag}",
                        path.display()
                    ));
                }
            }
            checked.insert(label);
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    for expected in [
        "config check",
        "index",
        "serve",
        "serve --http",
        "serve --gateway",
        "serve --metrics-addr",
    ] {
        assert!(
            checked.contains(expected),
            "never checked `{expected}`: {checked:?}"
        );
    }
}

#[test]
fn the_shipped_toml_loads_and_the_configmap_matches_the_image_layout() {
    let configmap = load_yaml(&deploy_dir().join("k8s/configmap.yaml"));
    let toml_text = configmap[0]["data"]["guidebot.toml"]
        .as_str()
        .expect("the ConfigMap holds guidebot.toml");
    let config = Config::from_toml_str(toml_text, Path::new("k8s/configmap.yaml"), &HashMap::new())
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.paths.corpus_dir, PathBuf::from("/app/corpus"));
    assert_eq!(
        config.paths.index_dir,
        PathBuf::from("/var/lib/guidebot/index")
    );
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("/app/corpus") && dockerfile.contains("/app/index"));

    // The gateway's shard script produces plans the configuration accepts.
    for (ordinal, expected) in [(0, "0-1/4"), (1, "2-3/4")] {
        let (per_pod, total) = (2, 4);
        let first = ordinal * per_pod;
        let plan = format!("{first}-{}/{total}", first + per_pod - 1);
        assert_eq!(plan, expected);
        guidebot::transport::gateway::ShardPlan::parse(&plan).unwrap();
    }
}

#[test]
fn the_image_runs_as_non_root_and_bakes_no_secrets() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 10001"));
    assert!(dockerfile.contains("HEALTHCHECK"));
    assert!(dockerfile.contains(" index"));
    for secret in [
        "DISCORD_TOKEN",
        "DISCORD_PUBLIC_KEY",
        "GUIDEBOT_LLM_API_KEY",
        "API_KEY=",
    ] {
        for line in dockerfile
            .lines()
            .filter(|line| line.starts_with("ENV") || line.starts_with("ARG"))
        {
            assert!(!line.contains(secret), "secret in the image: {line}");
        }
    }
    let dockerignore =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".dockerignore"))
            .unwrap();
    for ignored in ["target/", ".git/", "secrets/", "index/"] {
        assert!(
            dockerignore.lines().any(|line| line.trim() == ignored),
            "{ignored}"
        );
    }
}

#[test]
fn the_systemd_unit_raises_the_file_limit_above_the_connection_cap() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/guidebot.service"),
    )
    .expect("the unit file");
    let limit: u64 = unit
        .lines()
        .find_map(|line| line.strip_prefix("LimitNOFILE="))
        .and_then(|value| value.trim().parse().ok())
        .expect("LimitNOFILE is set");
    assert!(
        limit >= 4 * guidebot::transport::http::DEFAULT_MAX_CONNECTIONS as u64,
        "LimitNOFILE={limit}"
    );
}

/// Issue 17: Compose brings up the bot with a PostgreSQL service (official image, a volume, a
/// healthcheck the bot waits for), the password only in a secret file; every Kubernetes workload
/// takes `GUIDEBOT_STORE_URL` from the Secret, so replicas share one store.
#[test]
fn compose_and_kubernetes_share_one_postgres_store() {
    let compose = &load_yaml(&deploy_dir().join("compose.yaml"))[0];
    let services = &compose["services"];
    let postgres = &services["postgres"];
    let image = postgres["image"].as_str().expect("a postgres image");
    assert!(
        image.starts_with("postgres:"),
        "the official image: {image}"
    );
    assert!(
        postgres["volumes"]
            .as_vec()
            .is_some_and(|volumes| volumes.iter().any(|v| v
                .as_str()
                .is_some_and(|v| v.ends_with(":/var/lib/postgresql/data")))),
        "the data lives in a volume"
    );
    assert!(
        !postgres["healthcheck"]["test"].is_badvalue(),
        "postgres has a healthcheck"
    );
    assert_eq!(
        postgres["environment"]["POSTGRES_PASSWORD_FILE"].as_str(),
        Some("/run/secrets/postgres_password")
    );
    let bot = &services["guidebot"];
    assert_eq!(
        bot["depends_on"]["postgres"]["condition"].as_str(),
        Some("service_healthy")
    );
    let url = bot["environment"]["GUIDEBOT_STORE_URL"]
        .as_str()
        .expect("the bot uses the database");
    let config = Config::load(
        None,
        &HashMap::from([("GUIDEBOT_STORE_URL".to_string(), url.to_string())]),
    )
    .expect("the URL is valid");
    assert!(matches!(
        config.store_target(),
        Some(guidebot::store::StoreTarget::Postgres { .. })
    ));
    assert!(
        !url.contains(':')
            || !url["postgres://".len()..]
                .split('@')
                .next()
                .unwrap_or("")
                .contains(':'),
        "no password in the URL: {url}"
    );
    assert_eq!(
        bot["environment"]["GUIDEBOT_STORE_PASSWORD_FILE"].as_str(),
        Some("/run/secrets/postgres_password")
    );

    for file in ["deployment-http.yaml", "statefulset-gateway.yaml"] {
        let docs = load_yaml(&deploy_dir().join("k8s").join(file));
        let workload = docs
            .iter()
            .find(|doc| matches!(doc["kind"].as_str(), Some("Deployment" | "StatefulSet")))
            .unwrap_or_else(|| panic!("{file}: no workload"));
        let containers = &workload["spec"]["template"]["spec"]["containers"][0];
        let store_url = containers["env"]
            .as_vec()
            .and_then(|env| {
                env.iter()
                    .find(|var| var["name"].as_str() == Some("GUIDEBOT_STORE_URL"))
            })
            .unwrap_or_else(|| panic!("{file}: no GUIDEBOT_STORE_URL"));
        let reference = &store_url["valueFrom"]["secretKeyRef"];
        assert_eq!(
            reference["name"].as_str(),
            Some("guidebot-secrets"),
            "{file}"
        );
        assert_eq!(
            reference["key"].as_str(),
            Some("GUIDEBOT_STORE_URL"),
            "{file}"
        );
    }
    let secret = &load_yaml(&deploy_dir().join("k8s/secret.example.yaml"))[0];
    assert!(secret["stringData"]["GUIDEBOT_STORE_URL"]
        .as_str()
        .is_some_and(|url| url.starts_with("postgres://") && url.contains("REPLACE")));
}

/// Seconds in a duration as the deploy files write it: `45`, `45s`.
fn seconds(text: &str) -> u64 {
    text.trim()
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("not a number of seconds: {text:?}"))
}

/// After SIGTERM, guidebot may take up to `serve::SHUTDOWN_GRACE` to finish answers in progress
/// and exit; every way it is deployed waits at least that long before killing it.
#[test]
fn every_deployment_waits_the_shutdown_grace_period_before_killing() {
    let grace = guidebot::serve::SHUTDOWN_GRACE.as_secs();
    let unit = std::fs::read_to_string(deploy_dir().join("guidebot.service")).unwrap();
    let stop = unit
        .lines()
        .find_map(|line| line.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec is set");
    assert!(seconds(stop) >= grace, "TimeoutStopSec={stop}");

    let compose = &load_yaml(&deploy_dir().join("compose.yaml"))[0];
    let stop = compose["services"]["guidebot"]["stop_grace_period"]
        .as_str()
        .expect("stop_grace_period is set (Docker's default is 10 s)");
    assert!(seconds(stop) >= grace, "stop_grace_period: {stop}");

    let mut workloads = 0;
    for path in yaml_files()
        .into_iter()
        .filter(|path| path.parent().is_some_and(|dir| dir.ends_with("k8s")))
    {
        for doc in load_yaml(&path) {
            let kind = doc["kind"].as_str().unwrap_or_default();
            if !matches!(kind, "Deployment" | "StatefulSet") {
                continue;
            }
            workloads += 1;
            let period = doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or_else(|| {
                    panic!(
                        "{}: terminationGracePeriodSeconds is not set (Kubernetes' default is 30)",
                        path.display()
                    )
                });
            assert!(period as u64 >= grace, "{}: {period}", path.display());
        }
    }
    assert!(workloads >= 2, "{workloads}");
}
