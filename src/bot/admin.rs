//! Server administration: per-channel modes (off / mention-only / auto-answer /
//! thread-per-answer) kept per server behind [`ChannelSettings`], and per-server counters for
//! `/guidebot stats`. The `/guidebot` commands themselves run in the dispatcher.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

/// How the bot behaves in one channel, set by `/guidebot channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelMode {
    /// No mentions or follow-ups answered here (slash commands still answer the one who asks).
    Off,
    /// Answers mentions and follow-ups in its own conversations (the default).
    #[default]
    MentionOnly,
    /// Also answers each new post or forum thread without a mention, when the guides cover it
    /// (silent otherwise).
    AutoAnswer,
    /// Answers mentions in a new thread started from the question.
    ThreadPerAnswer,
}

impl ChannelMode {
    /// Every mode, in the order `/guidebot channel` offers them.
    pub const ALL: [ChannelMode; 4] = [
        ChannelMode::Off,
        ChannelMode::MentionOnly,
        ChannelMode::AutoAnswer,
        ChannelMode::ThreadPerAnswer,
    ];

    /// The name used in the command's choices, the settings file and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelMode::Off => "off",
            ChannelMode::MentionOnly => "mention-only",
            ChannelMode::AutoAnswer => "auto-answer",
            ChannelMode::ThreadPerAnswer => "thread-per-answer",
        }
    }

    /// The mode called `name`, if any.
    pub fn parse(name: &str) -> Option<ChannelMode> {
        ChannelMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == name.trim())
    }

    /// What the mode does, for the confirmation an admin sees.
    pub fn describe(self) -> &'static str {
        match self {
            ChannelMode::Off => "guidebot no longer answers mentions or follow-ups here (slash commands still work)",
            ChannelMode::MentionOnly => "guidebot answers when mentioned, and follow-ups in its threads and reply chains",
            ChannelMode::AutoAnswer => "guidebot answers every new post here when the guides cover it, and stays silent otherwise",
            ChannelMode::ThreadPerAnswer => "guidebot answers each mention in a new thread",
        }
    }
}

/// Channel settings could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot write the channel settings to {path}: {message}")]
    Write { path: String, message: String },
    #[error("channel settings unavailable: {0}")]
    Unavailable(String),
}

/// Where channel modes are kept, per server. Async (boxed futures) so the shared store can
/// implement it later.
pub trait ChannelSettings: Send + Sync {
    /// The mode of `channel_id` in `guild_id` (the default when never set).
    fn mode(
        &self,
        guild_id: u64,
        channel_id: u64,
    ) -> BoxFuture<'_, Result<ChannelMode, SettingsError>>;
    /// Sets the mode of a channel.
    fn set_mode(
        &self,
        guild_id: u64,
        channel_id: u64,
        mode: ChannelMode,
    ) -> BoxFuture<'_, Result<(), SettingsError>>;
}

/// The file's shape: server id → channel id → mode (ids as strings, as JSON keys must be).
type ModeMap = BTreeMap<String, BTreeMap<String, ChannelMode>>;

/// Modes in memory, written through to a small JSON file when one is given (read at start; an
/// unreadable file is logged and ignored, so a typo there never stops the bot).
#[derive(Debug, Default)]
pub struct FileChannelSettings {
    path: Option<PathBuf>,
    modes: Mutex<ModeMap>,
}

impl FileChannelSettings {
    /// Settings kept only in memory (tests, or no file configured).
    pub fn in_memory() -> Self {
        FileChannelSettings::default()
    }

    /// Settings persisted in `path` (loaded now when it exists).
    pub fn open(path: PathBuf) -> Self {
        let modes = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|error| {
                tracing::warn!(path = %path.display(), %error, "channel settings unreadable; starting with defaults");
                ModeMap::new()
            }),
            Err(_) => ModeMap::new(),
        };
        FileChannelSettings {
            path: Some(path),
            modes: Mutex::new(modes),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ModeMap>, SettingsError> {
        self.modes
            .lock()
            .map_err(|_| SettingsError::Unavailable("the settings lock was poisoned".to_string()))
    }

    /// Writes the whole map atomically (a temporary file renamed over the old one).
    fn persist(&self, modes: &ModeMap) -> Result<(), SettingsError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let failed = |message: String| SettingsError::Write {
            path: path.display().to_string(),
            message,
        };
        let text =
            serde_json::to_string_pretty(modes).map_err(|error| failed(error.to_string()))?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, text).map_err(|error| failed(error.to_string()))?;
        std::fs::rename(&temporary, path).map_err(|error| failed(error.to_string()))
    }
}

impl ChannelSettings for FileChannelSettings {
    fn mode(
        &self,
        guild_id: u64,
        channel_id: u64,
    ) -> BoxFuture<'_, Result<ChannelMode, SettingsError>> {
        let mode = self.lock().map(|modes| {
            modes
                .get(&guild_id.to_string())
                .and_then(|channels| channels.get(&channel_id.to_string()))
                .copied()
                .unwrap_or_default()
        });
        Box::pin(std::future::ready(mode))
    }

    fn set_mode(
        &self,
        guild_id: u64,
        channel_id: u64,
        mode: ChannelMode,
    ) -> BoxFuture<'_, Result<(), SettingsError>> {
        let result = self.lock().and_then(|mut modes| {
            modes
                .entry(guild_id.to_string())
                .or_default()
                .insert(channel_id.to_string(), mode);
            self.persist(&modes)
        });
        Box::pin(std::future::ready(result))
    }
}

/// One server's counters since the process started, for `/guidebot stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub questions: u64,
    pub refused: u64,
    pub helpful: u64,
    pub not_helpful: u64,
    pub escalations: u64,
    /// Refused questions (as asked, lowercased) and how often, most asked first.
    pub top_unanswered: Vec<(String, u64)>,
}

/// Most distinct refused questions remembered per server.
const UNANSWERED_KEPT: usize = 200;

#[derive(Debug, Default)]
struct ServerCounters {
    questions: u64,
    refused: u64,
    helpful: u64,
    not_helpful: u64,
    escalations: u64,
    unanswered: HashMap<String, u64>,
}

/// What one interaction adds to its server's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsEvent {
    /// A question answered (refused: the guides do not cover it; then the question is kept).
    Question { refused_question: Option<String> },
    /// A 👍 or 👎.
    Feedback { helpful: bool },
    /// A hand-off to the helper role.
    Escalation,
}

/// Per-server counters in memory (reset on restart; the store keeps the long history).
#[derive(Debug, Default)]
pub struct StatsBook {
    servers: Mutex<HashMap<u64, ServerCounters>>,
}

impl StatsBook {
    /// Adds an event to `guild_id`'s counters.
    pub fn record(&self, guild_id: u64, event: StatsEvent) {
        let Ok(mut servers) = self.servers.lock() else {
            return;
        };
        let counters = servers.entry(guild_id).or_default();
        match event {
            StatsEvent::Question { refused_question } => {
                counters.questions += 1;
                if let Some(question) = refused_question {
                    counters.refused += 1;
                    let key = question.trim().to_lowercase();
                    if counters.unanswered.len() < UNANSWERED_KEPT
                        || counters.unanswered.contains_key(&key)
                    {
                        *counters.unanswered.entry(key).or_default() += 1;
                    }
                }
            }
            StatsEvent::Feedback { helpful: true } => counters.helpful += 1,
            StatsEvent::Feedback { helpful: false } => counters.not_helpful += 1,
            StatsEvent::Escalation => counters.escalations += 1,
        }
    }

    /// `guild_id`'s counters, with its `top` most asked unanswered questions.
    pub fn of(&self, guild_id: u64, top: usize) -> ServerStats {
        let Ok(servers) = self.servers.lock() else {
            return ServerStats::default();
        };
        let Some(counters) = servers.get(&guild_id) else {
            return ServerStats::default();
        };
        let mut unanswered: Vec<(String, u64)> = counters
            .unanswered
            .iter()
            .map(|(question, count)| (question.clone(), *count))
            .collect();
        unanswered.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        unanswered.truncate(top);
        ServerStats {
            questions: counters.questions,
            refused: counters.refused,
            helpful: counters.helpful,
            not_helpful: counters.not_helpful,
            escalations: counters.escalations,
            top_unanswered: unanswered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_by_name() {
        for mode in ChannelMode::ALL {
            assert_eq!(ChannelMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(ChannelMode::parse("loud"), None);
        assert_eq!(ChannelMode::default(), ChannelMode::MentionOnly);
    }

    #[tokio::test]
    async fn modes_are_kept_per_server_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("channels.json");
        let settings = FileChannelSettings::open(path.clone());
        settings
            .set_mode(1, 10, ChannelMode::AutoAnswer)
            .await
            .unwrap();
        assert_eq!(settings.mode(1, 10).await.unwrap(), ChannelMode::AutoAnswer);
        assert_eq!(
            settings.mode(2, 10).await.unwrap(),
            ChannelMode::MentionOnly
        );
        let reopened = FileChannelSettings::open(path);
        assert_eq!(reopened.mode(1, 10).await.unwrap(), ChannelMode::AutoAnswer);
    }

    #[test]
    fn stats_are_per_server_with_the_most_asked_unanswered_first() {
        let book = StatsBook::default();
        for question in ["Visa?", "visa?", "pets?"] {
            book.record(
                1,
                StatsEvent::Question {
                    refused_question: Some(question.to_string()),
                },
            );
        }
        book.record(
            1,
            StatsEvent::Question {
                refused_question: None,
            },
        );
        book.record(1, StatsEvent::Feedback { helpful: true });
        book.record(2, StatsEvent::Escalation);
        let stats = book.of(1, 5);
        assert_eq!((stats.questions, stats.refused, stats.helpful), (4, 3, 1));
        assert_eq!(stats.top_unanswered[0], ("visa?".to_string(), 2));
        assert_eq!(book.of(2, 5).escalations, 1);
        assert_eq!(book.of(3, 5), ServerStats::default());
    }
}
