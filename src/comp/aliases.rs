//! Company aliases and role names as data (`corpus/company-aliases.toml`), so maintainers add "fb → Meta" without code.

use crate::corpus::CorpusError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The file, next to the guides, that maps nicknames to the company names the guides use.
pub const ALIASES_FILE_NAME: &str = "company-aliases.toml";

/// Nicknames for companies and tiers, and the spellings of roles: what lets "fb" find Meta and
/// "machine learning engineer" filter on MLE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyAliases {
    /// Canonical name → its aliases, sorted by canonical name.
    pub companies: Vec<(String, Vec<String>)>,
    /// Role code ("MLE") → its spellings ("ml engineer", ...): the file's roles, then built-in ones.
    pub roles: Vec<(String, Vec<String>)>,
    /// Employers and places people ask pay for that the guides' tables do not cover (the file's
    /// `[not_covered]`), as written: a pay question naming one is refused with that name instead
    /// of being answered with other companies' rows.
    pub not_covered: Vec<String>,
    /// Parts of pay the tables do not carry ("signing bonus", "401k"; the file's
    /// `[not_covered] pay`): naming one makes a question a pay question, refused with that name
    /// unless a guide's text mentions it.
    pub not_covered_pay: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasFile {
    #[serde(default)]
    companies: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    not_covered: NotCoveredFile,
}

/// `[not_covered]`: names whose pay the guides do not give, by kind (kinds only organize the file).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotCoveredFile {
    #[serde(default)]
    employers: Vec<String>,
    #[serde(default)]
    places: Vec<String>,
    #[serde(default)]
    pay: Vec<String>,
}

/// Role codes known even without a data file, so tables in any corpus split "Meta DS" correctly.
const DEFAULT_ROLES: &[(&str, &[&str])] = &[
    ("DS", &["data scientist", "data science"]),
    ("MLE", &["ml engineer", "machine learning engineer"]),
    ("MTS", &["member of technical staff"]),
    ("ML", &["machine learning"]),
    ("SWE", &["software engineer"]),
    ("RS", &["research scientist"]),
    ("RE", &["research engineer"]),
    ("DE", &["data engineer"]),
    ("AS", &["applied scientist"]),
];

impl CompanyAliases {
    /// Loads `company-aliases.toml` from the corpus folder; a missing file means no company aliases
    /// (the built-in role names still apply). A malformed file is an error naming file and line.
    pub fn load(corpus_dir: &Path) -> Result<CompanyAliases, CorpusError> {
        let path = corpus_dir.join(ALIASES_FILE_NAME);
        if !path.exists() {
            return Ok(CompanyAliases::with_default_roles(
                Vec::new(),
                Vec::new(),
                Vec::new(),
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|source| CorpusError::Io {
            path: path.clone(),
            source,
        })?;
        CompanyAliases::parse(&path, &text)
    }

    /// Parses the TOML text of an alias file; `path` is for error messages.
    pub fn parse(path: &Path, text: &str) -> Result<CompanyAliases, CorpusError> {
        let file: AliasFile = toml::from_str(text).map_err(|error| {
            let line = crate::util::toml::error_line(text, &error, 1);
            CorpusError::invalid(
                path,
                line,
                format!("bad company aliases: {}", error.message()),
            )
        })?;
        let companies = file
            .companies
            .into_iter()
            .map(|(name, aliases)| (name.trim().to_string(), aliases))
            .collect();
        let roles = file
            .roles
            .into_iter()
            .map(|(code, spellings)| (code.trim().to_string(), spellings))
            .collect();
        let trimmed = |names: Vec<String>| -> Vec<String> {
            names
                .into_iter()
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty())
                .collect()
        };
        let NotCoveredFile {
            employers,
            places,
            pay,
        } = file.not_covered;
        let not_covered = trimmed(employers.into_iter().chain(places).collect());
        let mut aliases = CompanyAliases::with_default_roles(companies, roles, not_covered);
        aliases.not_covered_pay = trimmed(pay);
        Ok(aliases)
    }

    fn with_default_roles(
        companies: Vec<(String, Vec<String>)>,
        mut roles: Vec<(String, Vec<String>)>,
        not_covered: Vec<String>,
    ) -> CompanyAliases {
        for (code, spellings) in DEFAULT_ROLES {
            match roles
                .iter_mut()
                .find(|(known, _)| known.eq_ignore_ascii_case(code))
            {
                Some((_, known)) => {
                    for spelling in *spellings {
                        if !known.iter().any(|k| k.eq_ignore_ascii_case(spelling)) {
                            known.push((*spelling).to_string());
                        }
                    }
                }
                None => roles.push((
                    (*code).to_string(),
                    spellings.iter().map(|s| (*s).to_string()).collect(),
                )),
            }
        }
        CompanyAliases {
            companies,
            roles,
            not_covered,
            not_covered_pay: Vec::new(),
        }
    }

    /// The role code for a word or phrase ("mle", "ML engineer" → "MLE"), if it names a role.
    pub fn role_code(&self, text: &str) -> Option<String> {
        let wanted = super::normalize(text);
        if wanted.is_empty() {
            return None;
        }
        self.roles.iter().find_map(|(code, spellings)| {
            let hit = super::normalize(code) == wanted
                || spellings.iter().any(|s| super::normalize(s) == wanted);
            hit.then(|| code.clone())
        })
    }

    /// The canonical company for an alias or canonical spelling (exact after normalization).
    pub fn canonical(&self, text: &str) -> Option<&str> {
        let wanted = super::normalize(text);
        if wanted.is_empty() {
            return None;
        }
        self.companies.iter().find_map(|(name, aliases)| {
            let hit = super::normalize(name) == wanted
                || aliases
                    .iter()
                    .any(|alias| super::normalize(alias) == wanted);
            hit.then_some(name.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_roles_resolve_after_normalization() {
        let aliases = CompanyAliases::parse(
            Path::new("x.toml"),
            "[companies]\n\"Hugging Face\" = [\"hf\", \"huggingface\"]\n[roles]\nMLE = [\"mle engineer\"]\n",
        )
        .unwrap();
        assert_eq!(aliases.canonical("HF"), Some("Hugging Face"));
        assert_eq!(aliases.canonical("hugging-face"), Some("Hugging Face"));
        assert_eq!(aliases.canonical("nope"), None);
        assert_eq!(
            aliases.role_code("Machine Learning Engineer").as_deref(),
            Some("MLE")
        );
        assert_eq!(aliases.role_code("ds").as_deref(), Some("DS"));
        assert_eq!(aliases.role_code("E4"), None);
    }

    #[test]
    fn a_broken_file_names_its_line() {
        let error = CompanyAliases::parse(Path::new("a.toml"), "[companies]\nMeta = 3\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("a.toml:2:"), "{error}");
    }
}
