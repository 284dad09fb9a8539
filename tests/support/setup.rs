//! Setup repeated across the integration tests: the bundled guides, an in-memory engine over
//! them, an environment map for the configuration, and a command run in process.

use guidebot::corpus::Corpus;
use guidebot::engine::Engine;
use guidebot::llm::LlmSettings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The bundled guides' folder (`corpus/` at the crate root).
pub fn bundled_corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Copies the bundled corpus's files (guides and data files) into a new folder `dir/corpus`, for
/// tests that edit the guides; returns the folder and the copied guide (`*.md`).
pub fn copy_of_bundled_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    let corpus = dir.join("corpus");
    std::fs::create_dir(&corpus).expect("a corpus folder");
    let mut guide = None;
    for entry in std::fs::read_dir(bundled_corpus_dir()).expect("the bundled corpus") {
        let entry = entry.expect("a corpus entry");
        if entry.file_type().is_ok_and(|kind| kind.is_file()) {
            let to = corpus.join(entry.file_name());
            std::fs::copy(entry.path(), &to).expect("a copied corpus file");
            if to.extension().is_some_and(|extension| extension == "md") {
                guide = Some(to);
            }
        }
    }
    (corpus, guide.expect("the bundled corpus has a guide"))
}

/// Flips one bit in the middle of the `.fieldnorm` file of the index generation folder
/// `generation` (a damage Tantivy's checksums catch on open, and a panic inside a search that
/// reads the file); returns the damaged file.
pub fn flip_a_bit_of_the_fieldnorm_file(generation: &Path) -> PathBuf {
    let fieldnorm = std::fs::read_dir(generation)
        .expect("generation folder")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.extension()
                .is_some_and(|extension| extension == "fieldnorm")
        })
        .expect("a .fieldnorm file");
    let mut bytes = std::fs::read(&fieldnorm).expect("index file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&fieldnorm, &bytes).expect("write damage");
    fieldnorm
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

/// The `guidebot` binary run from the crate root with a clean environment (only `PATH`) and the
/// corpus watcher off.
pub fn guidebot_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_guidebot"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GUIDEBOT_RELOAD_WATCH", "false");
    command
}

/// A POST of `body` to `base`'s interactions endpoint, signed by `key` now as Discord signs it.
pub fn signed_interaction(
    client: &reqwest::Client,
    base: &str,
    key: &ed25519_dalek::SigningKey,
    body: &str,
) -> reqwest::RequestBuilder {
    use ed25519_dalek::Signer;
    let timestamp = guidebot::util::clock::now_unix().to_string();
    let signature = key.sign(format!("{timestamp}{body}").as_bytes());
    client
        .post(format!("{base}/interactions"))
        .header("content-type", "application/json")
        .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
        .header("x-signature-timestamp", &timestamp)
        .body(body.to_string())
}

/// Runs `guidebot ARGS` in process (the binary's own code) with only `pairs` in its environment;
/// the result and what it printed (which must be UTF-8).
pub async fn run_cli(args: &[&str], pairs: &[(&str, &str)]) -> (anyhow::Result<()>, String) {
    use clap::Parser;
    let cli = guidebot::cli::Cli::try_parse_from(args).expect("the arguments parse");
    let mut out = Vec::new();
    let result = guidebot::cli::run(cli, &vars(pairs), &mut out).await;
    (result, String::from_utf8(out).expect("UTF-8 output"))
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

/// A free TCP port on 127.0.0.1 for a server a test starts.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address").port()
}

/// A `guidebot` process a test started: killed when the test ends, however it ends.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most `limit`) until the process serving on `base` answers `/readyz` with success;
/// fails the test when it exits first or never becomes ready.
pub async fn wait_until_ready(process: &mut Process, base: &str, limit: std::time::Duration) {
    let (client, deadline) = (reqwest::Client::new(), std::time::Instant::now() + limit);
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{base} never became ready"
        );
        if let Ok(Some(status)) = process.0.try_wait() {
            panic!("{base} exited early: {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The JSON a successful command printed on stdout; fails the test (with its stderr) otherwise.
pub fn success_json(output: &std::process::Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the command failed: {stderr}");
    stdout_json(output)
}

/// The one JSON object a command printed on stdout, whether it succeeded or not.
pub fn stdout_json(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("stdout is not one JSON object ({error}): {stdout}"))
}
