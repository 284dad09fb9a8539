//! Transports: how Discord reaches the bot. Each one turns Discord traffic into calls of the one
//! [`crate::bot::Dispatcher`] and holds no command logic of its own.
//!
//! - [`gateway`]: a serenity client over Discord's websocket gateway (sharded), the usual mode.
//! - [`http`]: the signed HTTP interactions endpoint (axum), stateless and horizontally scalable;
//!   [`replay`] is its bounded memory of the interaction ids it accepted.
//!
//! Both track the work they start the same way, with [`InFlight`].

pub mod gateway;
pub mod http;
pub mod replay;

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Discord's REST API, unless `discord.api_base` names a proxy (or a fake Discord in tests).
pub const DISCORD_API_BASE: &str = "https://discord.com";

/// The handler tasks a transport started and has not seen finish. Exists so shutdown waits for
/// real work (a streaming LLM answer) instead of polling a counter, and so work still running at
/// the deadline is cancelled rather than abandoned mid-write. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl InFlight {
    /// Runs `work` in its own task, tracked until it finishes or shutdown cancels it.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => tracing::warn!("work in flight cancelled at shutdown"),
                () = work => {}
            }
        });
    }

    /// Tasks still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Whether nothing is running.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Waits (at most `timeout`) for every task to finish, then cancels what is left and waits
    /// for the cancellations to land.
    pub async fn drain(&self, timeout: Duration) {
        self.tracker.close();
        if self.tracker.is_empty() {
            return;
        }
        tracing::info!(pending = self.len(), "waiting for work in flight");
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.len(),
                "work still in flight at the deadline is cancelled"
            );
            self.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), self.tracker.wait()).await;
        }
    }
}
