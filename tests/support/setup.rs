//! Setup repeated across the integration tests: the bundled guides, an in-memory engine over
//! them, and an environment map for the configuration.

use guidebot::corpus::Corpus;
use guidebot::engine::Engine;
use guidebot::llm::LlmSettings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The bundled guides' folder (`corpus/` at the crate root).
pub fn bundled_corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The guides in `dir`, loaded (a broken test corpus fails the test).
pub fn corpus_at(dir: &Path) -> Corpus {
    Corpus::load(dir).expect("the corpus loads")
}

/// The bundled guides, loaded.
pub fn bundled_corpus() -> Corpus {
    corpus_at(&bundled_corpus_dir())
}

/// An engine over the bundled guides with an in-memory index; `llm` as given.
pub fn bundled_engine(llm: Option<LlmSettings>) -> Engine {
    Engine::in_memory(bundled_corpus(), llm).expect("an engine over the bundled guides")
}

/// An environment for `Config::load` and `cli::run` from `(name, value)` pairs.
pub fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Sends SIGTERM to a `guidebot` process, waits (up to 30 s) for it to exit by itself, checks that
/// it exited successfully and returns what it wrote to stdout (its logs).
pub async fn terminate(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let pid = child.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("the process can be waited for") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut logs = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut logs);
    }
    assert!(status.success(), "exit {status}: {logs}");
    logs
}
