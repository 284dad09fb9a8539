//! How one setting is read: the layers (default, file, environment, flag), the readers that turn
//! text into a typed, checked value, secrets from variables or `*_FILE` files, and the problems
//! found on the way (all of them, each with its place).

use super::{Env, Flag, FILE_SUFFIX, KEYS, SECRET_VARS};
use crate::util::parse::{optional, parsed};
use crate::util::secret;
use crate::util::secret::{mask_url_credentials, Secret};
use crate::util::text::non_empty;
use crate::util::toml::{line_of, scalar_text};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::de::DeTable;

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
    /// A command-line flag.
    Flag { flag: String },
}

impl Source {
    /// Where a problem with `key` from this source should point: `FILE:LINE: key`, the variable
    /// or flag, or the key itself.
    pub fn location(&self, key: &str) -> String {
        match self {
            Source::File { path, line } => format!("{}:{line}: {key}", path.display()),
            Source::Env { var: name } | Source::Flag { flag: name } => name.clone(),
            Source::Default => key.to_string(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "file {}:{line}", path.display()),
            Source::Env { var } => write!(f, "env {var}"),
            Source::Flag { flag } => write!(f, "flag {flag}"),
        }
    }
}

/// One thing wrong with the configuration: where (a variable, a flag, or `FILE:LINE: key`) and
/// the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{location}: {message}")]
pub struct Problem {
    /// The environment variable or flag, or `FILE:LINE: section.key` for a file value.
    pub location: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    pub(super) fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        let (location, message) = (location.into(), message.into());
        Problem { location, message }
    }
}

/// The configuration cannot be used. Lists every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration ({} problem{}){}", .problems.len(),
    if .problems.len() == 1 { "" } else { "s" },
    .problems.iter().map(|problem| format!("\n  {problem}")).collect::<String>())]
pub struct ConfigError {
    /// Every problem, file syntax errors first, then in the order of the settings.
    pub problems: Vec<Problem>,
}

impl From<Problem> for ConfigError {
    fn from(problem: Problem) -> Self {
        let problems = vec![problem];
        ConfigError { problems }
    }
}

/// What a secret's value must pass besides being set (a token without spaces, ...).
type Check = fn(&str) -> Result<(), String>;

/// Applies the layers one key at a time and collects problems instead of stopping at the first.
#[derive(Default)]
pub(super) struct Layers {
    /// The variables that are set, trimmed (empty ones count as unset).
    env: Env,
    /// Each key a flag, a variable or the file gives, with the text of the first of them (`Err`
    /// for a file value that is not a single value) and its source.
    given: HashMap<&'static str, (Result<String, &'static str>, Source)>,
    pub(super) sources: BTreeMap<&'static str, Source>,
    pub(super) problems: Vec<Problem>,
}

impl Layers {
    /// The variables and the flags (the last flag for a key wins); the file goes under them
    /// ([`Layers::read_file`]).
    pub(super) fn new(vars: &Env, flags: &[Flag]) -> Self {
        let set = |(var, value): (&String, &String)| Some((var.clone(), non_empty(value)?.into()));
        let mut layers = Layers::default();
        let Layers { env, given, .. } = &mut layers;
        env.extend(vars.iter().filter_map(set));
        for spec in KEYS {
            if let Some(text) = env.get(spec.env) {
                let var = spec.env.to_string();
                given.insert(spec.key, (Ok(text.clone()), Source::Env { var }));
            }
        }
        for Flag { key, flag, value } in flags {
            let flag = flag.to_string();
            given.insert(*key, (Ok(value.clone()), Source::Flag { flag }));
        }
        layers
    }

    /// Takes each value of the TOML `text` (read from `path`) with its line, where no variable or
    /// flag gives the key. A syntax error stops here; unknown keys and secrets are problems.
    pub(super) fn read_file(&mut self, path: &Path, text: &str) -> Result<(), Problem> {
        let at = |offset: usize| format!("{}:{}", path.display(), line_of(text, offset));
        let table = DeTable::parse(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            Problem::new(at(offset), error.message().trim())
        })?;
        let unknown = |what: &str, name: &str| {
            format!("unknown {what} `{name}`; see deploy/guidebot.example.toml for every key, or `guidebot config check`")
        };
        for (section, body) in table.get_ref().iter() {
            let name = section.get_ref();
            let known = KEYS.iter().any(|s| s.key.split('.').next() == Some(name));
            let (true, Some(entries)) = (known, body.get_ref().as_table()) else {
                self.problem::<()>(at(section.span().start), unknown("section", name));
                continue;
            };
            for (name, value) in entries.iter() {
                let key = format!("{}.{}", section.get_ref(), name.get_ref());
                if let Some((var, _)) = SECRET_VARS.iter().find(|(_, file_key)| *file_key == key) {
                    let message = format!("secrets are not read from the config file; remove it and set {var} or {var}{FILE_SUFFIX} (a file holding it)");
                    self.problem::<()>(format!("{}: {key}", at(name.span().start)), message);
                } else if let Some(spec) = KEYS.iter().find(|spec| spec.key == key) {
                    let (path, line) = (path.to_path_buf(), line_of(text, value.span().start));
                    let source = Source::File { path, line };
                    let text = scalar_text(value.get_ref());
                    self.given.entry(spec.key).or_insert((text, source));
                } else {
                    self.problem::<()>(at(name.span().start), unknown("key", &key));
                }
            }
        }
        Ok(())
    }

    /// The value of `key`: the flag if given, else the variable, else the file, else `default`.
    /// `read` turns text into the value and says how to fix text it refuses.
    pub(super) fn pick<T>(
        &mut self,
        key: &'static str,
        default: T,
        read: impl Fn(&str) -> Result<T, String>,
    ) -> T {
        let Some((text, source)) = self.given.remove(key) else {
            self.sources.insert(key, Source::Default);
            return default;
        };
        // A URL's password must not reach the message.
        let invalid = |t: &str, fix| format!("{:?} is invalid: {fix}", mask_url_credentials(t));
        let (text, location) = (text.map_err(str::to_string), source.location(key));
        self.sources.insert(key, source); // unused when there is a problem: no configuration then
        match text.and_then(|text| read(text.trim()).map_err(|fix| invalid(&text, fix))) {
            Ok(value) => value,
            Err(fix) => self.problem(location, fix).unwrap_or(default),
        }
    }

    /// The secret `var`, from the variable `from` or the file named by `<from>_FILE` (`from` is
    /// `var` itself, or a provider-specific fallback such as `ANTHROPIC_API_KEY`).
    pub(super) fn secret(&mut self, var: &'static str, from: &str, check: Check) -> Option<Secret> {
        let (secret, from) = match secret::from_env(&self.env, from) {
            Ok(found) => found?,
            Err((at, message)) => return self.problem(at, message),
        };
        if let Err(message) = check(secret.expose()) {
            return self.problem(from, message);
        }
        self.sources.insert(var, Source::Env { var: from });
        Some(secret)
    }

    fn problem<T>(&mut self, location: impl Into<String>, message: String) -> Option<T> {
        self.problems.push(Problem::new(location, message));
        None
    }
}

/// `""` (none) or a Discord id (a server, a role); `what` says which and where to copy it. The
/// general readers (numbers, flags, URLs, addresses) are in `util::parse`.
pub(super) fn id(what: &'static str) -> impl Fn(&str) -> Result<Option<u64>, String> {
    optional(parsed(|id: &u64| *id > 0, format!("use {what}")))
}
