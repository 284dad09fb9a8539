//! The one secret type: API keys, the bot token, the interactions public key and the id salt are
//! all [`Secret`]s, so none can reach a log, an error message or `config check`'s output by
//! accident.

use serde::{Serialize, Serializer};
use std::collections::HashMap;
use std::fmt;

/// Suffix of the variable that names a file holding a secret (`DISCORD_TOKEN_FILE`, ...).
pub const FILE_SUFFIX: &str = "_FILE";

/// A secret string. `Debug`, `Display` and `Serialize` all print `***`; only [`Secret::expose`]
/// gives the value, for the one place that sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, trimming surrounding whitespace (a pasted or file-ending newline).
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into().trim().to_string())
    }

    /// The secret itself.
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

/// A URL's `user:password@` replaced by `***@`, so `config check` never prints credentials put in
/// a base URL ("https://user:pass@proxy:8080" → "https://***@proxy:8080"); other text unchanged.
pub fn mask_url_credentials(value: &str) -> String {
    let Some(scheme_end) = value.find("://") else {
        return value.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = value[authority_start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |end| authority_start + end);
    match value[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &value[..authority_start],
            &value[authority_start + at..]
        ),
        None => value.to_string(),
    }
}

/// The secret in the variable `var` of `env`, or in the file named by `<var>_FILE` (how container
/// platforms mount secrets), with the variable it came from; `None` when neither is set. `Err`
/// names the variable to fix and how: both set is ambiguous, and the file must be readable and
/// not empty.
pub fn from_env(
    env: &HashMap<String, String>,
    var: &str,
) -> Result<Option<(Secret, String)>, (String, String)> {
    let file_var = format!("{var}{FILE_SUFFIX}");
    let (value, from) = match (env.get(var), env.get(&file_var)) {
        (Some(_), Some(_)) => {
            let message = format!("both {var} and {file_var} are set; keep only one");
            return Err((var.to_string(), message));
        }
        (Some(value), None) => (value.clone(), var.to_string()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|error| {
                format!("cannot read the secret file {path} ({error}); mount the secret there or unset {file_var}")
            });
            match text {
                Ok(text) if !text.trim().is_empty() => (text, file_var),
                Ok(_) => {
                    let message =
                        format!("the secret file {path} is empty; put the {var} value in it");
                    return Err((file_var, message));
                }
                Err(message) => return Err((file_var, message)),
            }
        }
        (None, None) => return Ok(None),
    };
    Ok(Some((Secret::new(value), from)))
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn never_prints() {
        let secret = Secret::new(" sk-123\n");
        assert_eq!(secret.expose(), "sk-123");
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"***\"");
    }
}
