//! Reading a value an operator typed (a setting, a variable, a flag): each reader takes trimmed
//! text and returns the value or how to fix the text, one message per rule; [`Text`] writes a
//! value back as that text. Domain values keep their readers next to their type
//! (`ShardPlan::parse`, `LogFormat::parse`, ...); the general ones live here so none is written
//! twice.

use reqwest::Url;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Text parsed as `T` and accepted by `ok`; else `fix` (what to write instead).
pub fn parsed<T: FromStr>(
    ok: impl Fn(&T) -> bool,
    fix: String,
) -> impl Fn(&str) -> Result<T, String> {
    move |raw| {
        raw.parse()
            .ok()
            .filter(|value| ok(value))
            .ok_or_else(|| fix.clone())
    }
}

/// `""` as `None` (off, or not set), else what `read` makes of the text.
pub fn optional<T>(
    read: impl Fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<Option<T>, String> {
    move |raw| {
        if raw.is_empty() {
            Ok(None)
        } else {
            read(raw).map(Some)
        }
    }
}

/// Any text, as it is.
pub fn text(raw: &str) -> Result<String, String> {
    Ok(raw.to_string())
}

/// A folder path; empty text is refused.
pub fn folder(raw: &str) -> Result<PathBuf, String> {
    let fix = "must not be empty; use a folder path";
    parsed(|path: &PathBuf| !path.as_os_str().is_empty(), fix.into())(raw)
}

/// `true`/`false`, also `yes`/`no`, `on`/`off` and `1`/`0`, in any case.
pub fn flag(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("use true or false".into()),
    }
}

/// A whole number from `low` to `high`.
pub fn whole<T: FromStr + PartialOrd + fmt::Display>(
    low: T,
    high: T,
) -> impl Fn(&str) -> Result<T, String> {
    let fix = format!("use a whole number from {low} to {high}");
    parsed(move |n| &low <= n && n <= &high, fix)
}

/// A number of seconds above 0 and at most `high`.
pub fn seconds(high: f64) -> impl Fn(&str) -> Result<f64, String> {
    let fix = format!("use a number of seconds above 0 and at most {high}, e.g. 30");
    parsed(
        move |secs: &f64| secs.is_finite() && *secs > 0.0 && *secs <= high,
        fix,
    )
}

/// An http(s) URL without query or fragment, trailing `/` removed; `""` allowed when `optional`.
pub fn url(optional: bool) -> impl Fn(&str) -> Result<String, String> {
    let fix = "use an http(s) URL without a query, e.g. https://discord.com or http://ollama:11434";
    let http = |url: &Url| {
        matches!(url.scheme(), "http" | "https")
            && url.query().is_none()
            && url.fragment().is_none()
    };
    let read = url_with(http, optional, fix);
    move |raw| read(raw.trim_end_matches('/'))
}

/// `""` or a PostgreSQL URL (`postgres://` or `postgresql://`, with a host), as typed.
pub fn postgres_url(raw: &str) -> Result<String, String> {
    let fix = "use \"\" (SQLite) or a PostgreSQL URL, e.g. postgres://guidebot@db:5432/guidebot";
    url_with(
        |url| matches!(url.scheme(), "postgres" | "postgresql"),
        true,
        fix,
    )(raw)
}

/// `""` when `optional`, else a URL with a host that `ok` accepts, as typed; else `fix`.
fn url_with(
    ok: impl Fn(&Url) -> bool,
    optional: bool,
    fix: &'static str,
) -> impl Fn(&str) -> Result<String, String> {
    let read = parsed(move |url: &Url| url.host().is_some() && ok(url), fix.into());
    move |raw| match raw {
        "" if optional => Ok(String::new()),
        _ => read(raw).map(|_| raw.to_string()),
    }
}

/// `""` (off) or an IP:PORT address.
pub fn addr(raw: &str) -> Result<Option<SocketAddr>, String> {
    let fix =
        "use IP:PORT, e.g. 0.0.0.0:8080 (all interfaces) or 127.0.0.1:9000, or \"\" to turn it off";
    optional(parsed(|_: &SocketAddr| true, fix.into()))(raw)
}

/// A value as the text its reader reads back, as a variable would hold it (`""` for `None`).
pub trait Text {
    /// The text of `None` for an optional value of this type.
    const NONE: &'static str = "";
    /// The text of the value.
    fn text(&self) -> String;
}

/// Implements [`Text`] through `Display` (of `self`, or of `self.$show()`), with the text of
/// `None` where it is not `""`.
macro_rules! display_text {
    ($($ty:ty $(: $none:literal)? $(=> $show:ident)?),*) => { $(impl $crate::util::parse::Text for $ty {
        $(const NONE: &'static str = $none;)?
        fn text(&self) -> String { self$(.$show())?.to_string() }
    })* };
}
pub(crate) use display_text;

display_text!(String, u64, u32, usize, f64, bool, SocketAddr, PathBuf => display);

impl<T: Text> Text for Option<T> {
    fn text(&self) -> String {
        self.as_ref().map_or(T::NONE.to_string(), T::text)
    }
}

#[cfg(test)]
mod tests {
    use super::{flag, url, whole};

    #[test]
    fn readers_accept_what_they_say_and_name_the_fix() {
        assert_eq!(flag("Yes"), Ok(true));
        assert_eq!(whole(1u32, 5)("5"), Ok(5));
        assert_eq!(
            whole(1u32, 5)("6"),
            Err("use a whole number from 1 to 5".into())
        );
        assert_eq!(url(true)(""), Ok(String::new()));
        assert_eq!(url(false)("http://x:1/"), Ok("http://x:1".into()));
        assert!(url(false)("x:1").is_err());
    }
}
