//! `guidebot serve` as a process: clear startup errors, the HTTP endpoint answering a signed PING
//! with metrics exposed, a clean exit on SIGTERM, the endpoint holding under stalled clients and
//! out of file descriptors, live reloads counted in `/metrics`, `/readyz` and `/metrics` following
//! the store, replays refused with or without a store, an index shared with CLI builds, damaged
//! under the server (a contained panic) or before it starts, and a pipe in the corpus.

mod support;

use ed25519_dalek::SigningKey;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::setup::{guidebot_command as guidebot, signed_interaction};

/// `serve --http 127.0.0.1:PORT` checking signatures with `key`'s public half, with its index
/// and database in `dir`.
fn http_server(key: &SigningKey, port: u16, dir: &std::path::Path) -> Command {
    let mut command = guidebot();
    command
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .env(
            "DISCORD_PUBLIC_KEY",
            hex::encode(key.verifying_key().to_bytes()),
        )
        .arg("--index")
        .arg(dir.join("index"))
        .env("GUIDEBOT_STORE_PATH", dir.join("guidebot.sqlite"));
    command
}

fn output_of(mut command: Command) -> (bool, String) {
    let output = command.output().expect("guidebot runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn serve_without_a_mode_says_what_to_set() {
    let mut command = guidebot();
    command.arg("serve");
    let (ok, text) = output_of(command);
    assert!(!ok);
    assert!(
        text.contains("nothing to serve") && text.contains("DISCORD_TOKEN"),
        "{text}"
    );
}

#[test]
fn a_bad_public_key_is_a_clear_startup_error() {
    let mut command = guidebot();
    command
        .args(["serve", "--http", "127.0.0.1:9"])
        .env("DISCORD_PUBLIC_KEY", "not-hex");
    let (ok, text) = output_of(command);
    assert!(!ok);
    assert!(text.contains("DISCORD_PUBLIC_KEY"), "{text}");
}

use support::setup::{free_port, wait_until_ready, Process as Server};

/// A signed interaction's body: Discord's PING.
const PING: &str = r#"{"type":1,"id":"1","application_id":"2","token":"t","version":1}"#;

#[tokio::test]
async fn http_mode_answers_a_signed_ping_and_stops_on_sigterm() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let metrics_port = free_port();
    // Issue 13: serve honours the global --index flag like every command.
    let mut command = http_server(&key, port, dir.path());
    command
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut server = Server(command.spawn().unwrap());
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    // Wait for readiness (bounded): the index is built on first start.
    wait_until_ready(&mut server, &base, Duration::from_secs(60)).await;

    assert!(
        dir.path().join("index").join("CURRENT").is_file(),
        "serve built its index where --index says"
    );

    let response = signed_interaction(&client, &base, &key, PING)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let pong: serde_json::Value = response.json().await.unwrap();
    assert_eq!(pong["type"], 1);

    let unsigned = client
        .post(format!("{base}/interactions"))
        .body(PING)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);

    // Metrics are not on the public interactions port, but on their own address.
    let public = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    let metrics = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("guidebot_index_info"), "{metrics}");
    assert!(
        metrics.contains("guidebot_http_rejections_total"),
        "{metrics}"
    );

    // SIGTERM: the process stops by itself, successfully.
    let logs = support::setup::terminate(&mut server.0).await;
    assert!(logs.contains("engine ready"), "{logs}");
    assert!(
        !logs.contains(&hex::encode(key.to_bytes())),
        "no key material in logs"
    );
}

/// Sends a signed PING to `base` and returns how long the answer took, or `None` if none came
/// within 3 seconds (Discord's deadline).
async fn signed_ping(base: &str, key: &SigningKey) -> Option<Duration> {
    let started = Instant::now();
    let response = signed_interaction(&reqwest::Client::new(), base, key, PING)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    (response.status() == 200).then(|| started.elapsed())
}

/// Slowloris under a low file limit: more stalled connections than the process has file
/// descriptors for (half of them with half-sent headers) must not keep a signed request from being
/// answered within Discord's 3 seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_beyond_the_file_limit_do_not_lock_out_signed_requests() {
    use tokio::io::AsyncWriteExt;
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = http_server(&key, port, dir.path());
    command
        .env("GUIDEBOT_HTTP_MAX_CONNECTIONS", "64")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    with_file_limit(&mut command, 128);
    let mut server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut server, &base, Duration::from_secs(60)).await;

    let mut stalled = Vec::new();
    for index in 0..200 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            continue;
        };
        if index % 2 == 0 {
            let _ = stream
                .write_all(b"POST /interactions HTTP/1.1\r\nHost: x\r\nContent-Le")
                .await;
        }
        stalled.push(stream);
    }
    for attempt in 0..3 {
        let took = signed_ping(&base, &key).await;
        assert!(
            took.is_some(),
            "attempt {attempt}: no answer within 3 s with {} stalled connections open",
            stalled.len()
        );
    }
    drop(stalled);
    drop(server);
}

/// `command` runs with at most `files` open file descriptors (set in the child before exec).
fn with_file_limit(command: &mut Command, files: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: files,
                rlim_max: files,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// What the server logs each time `accept` fails.
const ACCEPT_FAILED: &str = "accept failed";

/// Out of file descriptors, with a connection cap too high to help: `accept` itself fails
/// (EMFILE) while stalled clients keep connecting. The failures are logged about once a second,
/// not once per attempt, and once the clients go away a signed PING is answered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_errors_out_of_file_descriptors_are_logged_sparingly_and_service_resumes() {
    let key = SigningKey::from_bytes(&[11u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log_path = dir.path().join("serve.log");
    let mut command = http_server(&key, port, dir.path());
    command
        .env("GUIDEBOT_HTTP_MAX_CONNECTIONS", "100000")
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null());
    with_file_limit(&mut command, 64);
    let mut server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut server, &base, Duration::from_secs(60)).await;

    // Far more connections than the process has descriptors for; they wait in the listen backlog.
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..300 {
        if let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            stalled.push(stream);
        }
    }
    // Three seconds under that pressure, asking meanwhile (answers are not required here).
    while started.elapsed() < Duration::from_secs(3) {
        let _ = signed_ping(&base, &key).await;
    }
    let connected = stalled.len();
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(15);
    while signed_ping(&base, &key).await.is_none() {
        assert!(
            Instant::now() < deadline,
            "no signed PING answered within 15 s after the stalled clients left"
        );
    }
    let pressure = started.elapsed();
    support::setup::terminate(&mut server.0).await;
    let logs = std::fs::read_to_string(&log_path).unwrap();
    let failures = logs
        .lines()
        .filter(|line| line.contains(ACCEPT_FAILED))
        .count();
    assert!(
        failures >= 1,
        "accept never failed with {connected} connections and 64 descriptors: the case is not exercised"
    );
    let allowed = 2 * pressure.as_secs() as usize + 2;
    assert!(
        failures <= allowed,
        "{failures} '{ACCEPT_FAILED}' lines in {pressure:?} (at most {allowed}):\n{}",
        logs.lines()
            .filter(|line| line.contains(ACCEPT_FAILED))
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Passages in the synthetic corpus the reload below rebuilds: about ten seconds of indexing in a
/// debug build, far longer than the process may take to exit.
const SLOW_RELOAD_PASSAGES: usize = 10_000;
/// How soon after SIGTERM the process must be gone when no request is in flight: shutdown does not
/// wait for a rebuild (README, "Limits and failure behaviour").
const PROMPT_EXIT: Duration = Duration::from_secs(10);

/// The live generation named by `index/CURRENT`.
fn live_generation(index: &std::path::Path) -> String {
    std::fs::read_to_string(index.join("CURRENT"))
        .unwrap()
        .trim()
        .to_string()
}

/// Waits until the server logs that its live reloader listens: a SIGHUP before that would end the
/// process (its default action).
async fn wait_for_armed_reloader(process: &mut Server, log_path: &std::path::Path) {
    wait_for(process, "armed reloader", Duration::from_secs(30), || {
        std::fs::read_to_string(log_path)
            .unwrap_or_default()
            .contains("live reload listening")
    })
    .await;
}

/// Waits (at most `limit`) until `found` holds, failing the test if `process` exits first.
async fn wait_for(process: &mut Server, what: &str, limit: Duration, found: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !found() {
        if let Ok(Some(status)) = process.0.try_wait() {
            panic!("the server exited ({status}) while waiting for {what}");
        }
        assert!(Instant::now() < deadline, "no {what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM while a reload rebuilds a big corpus: the process exits successfully within seconds,
/// without waiting for the rebuild, and the abandoned rebuild never goes live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_reload_exits_promptly_and_keeps_the_previous_index() {
    let key = SigningKey::from_bytes(&[13u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let (corpus, _) = support::setup::copy_of_bundled_corpus(dir.path());
    let index = dir.path().join("index");
    let log_path = dir.path().join("serve.log");
    let port = free_port();
    let mut command = http_server(&key, port, dir.path());
    command
        .arg("--corpus")
        .arg(&corpus)
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null());
    let mut server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut server, &base, Duration::from_secs(60)).await;
    let before = live_generation(&index);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_for_armed_reloader(&mut server, &log_path).await;

    guidebot::synthetic::write_synthetic_corpus(
        &support::setup::bundled_corpus(),
        &corpus,
        SLOW_RELOAD_PASSAGES,
    )
    .unwrap();
    let pid = server.0.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    // The rebuild is under way once its build folder exists.
    let building = || {
        std::fs::read_dir(&index).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|entry| entry.file_name().to_string_lossy().starts_with(".build-"))
        })
    };
    wait_for(
        &mut server,
        "build folder",
        Duration::from_secs(120),
        building,
    )
    .await;

    let asked = Instant::now();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < PROMPT_EXIT,
            "still running {PROMPT_EXIT:?} after SIGTERM, during a reload"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit {status}: {}", log());
    // Shutdown does not wait for the rebuild; its thread may still finish in the moments before
    // the process exits and publish its generation (complete, built from the corpus on disk, so
    // the next start uses it) or be cut off (its build folder is left like a killed build's).
    // Either way CURRENT names a complete generation that answers.
    let log = log();
    let after = live_generation(&index);
    assert!(
        log.contains("the rebuild is abandoned") || log.contains("reloaded the corpus"),
        "{log}"
    );
    assert!(
        after == before || index.join(&after).join("meta.json").is_file(),
        "{after}"
    );
    let guides = guidebot::corpus::Corpus::load(&corpus).unwrap();
    let reopened = guidebot::search::SearchIndex::open_or_build(&guides, &index);
    assert!(reopened.is_ok(), "{:?}", reopened.err());
    assert!(log.contains("shutdown requested"), "{log}");
}

/// The application and user the signed commands below come from.
const APP_ID: u64 = 800_000_000_000_000_002;
const USER: u64 = 700_000_000_000_000_001;

/// A `guidebot serve --http` process with its SQLite store at `dir/guidebot.sqlite`, metrics on
/// their own port, and its logs in `dir/serve.log`.
struct StoreServer {
    _process: Server,
    key: SigningKey,
    base: String,
    metrics: String,
    store: std::path::PathBuf,
    client: reqwest::Client,
}

impl StoreServer {
    async fn start(dir: &std::path::Path, seed: u8) -> StoreServer {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let (port, metrics_port) = (free_port(), free_port());
        let mut command = http_server(&key, port, dir);
        command
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .stdout(std::fs::File::create(dir.join("serve.log")).unwrap())
            .stderr(Stdio::null());
        let mut process = Server(command.spawn().unwrap());
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&mut process, &base, Duration::from_secs(60)).await;
        StoreServer {
            _process: process,
            key,
            base,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            store: dir.join("guidebot.sqlite"),
            client: reqwest::Client::new(),
        }
    }

    /// A signed `/search` (the replay check reads and writes the store); its HTTP status.
    async fn search(&self) -> u16 {
        let body = support::fake_discord::interaction_command(
            APP_ID,
            "search",
            serde_json::json!([support::fake_discord::opt("query", "google l4 total comp")]),
            USER,
        )
        .to_string();
        signed_interaction(&self.client, &self.base, &self.key, &body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `/readyz`: status and body.
    async fn readyz(&self) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// The value of the unlabelled sample `name` in `/metrics`, 0 when absent.
    async fn metric(&self, name: &str) -> f64 {
        let text = self.client.get(&self.metrics).send().await.unwrap();
        let text = text.text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    /// Removes the database file and its WAL side files.
    fn delete_store(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", self.store.display()));
            if file.exists() {
                std::fs::remove_file(&file).unwrap();
            }
        }
    }
}

/// How long `/readyz` may take to follow the store: a few failed calls, or one successful one.
const READINESS_FOLLOWS_WITHIN: Duration = Duration::from_secs(15);

/// The SQLite file damaged in place while serving: answers go on (extractive, 200), and after a
/// few failed store calls `/readyz` says 503 and names the store; once the damaged file is removed
/// the store opens a new one and `/readyz` is 200 again, with the reopening counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_an_sqlite_store_damaged_while_serving_and_its_repair() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = StoreServer::start(dir.path(), 15).await;
    assert_eq!(server.search().await, 200);
    assert_eq!(server.readyz().await.0, 200);
    assert_eq!(server.metric("guidebot_store_unavailable").await, 0.0);

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&server.store)
        .unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(&[0xA5; 8192]).unwrap();
    file.sync_all().unwrap();
    for suffix in ["-wal", "-shm"] {
        let side = std::path::PathBuf::from(format!("{}{suffix}", server.store.display()));
        if side.exists() {
            std::fs::write(&side, [0x5A; 4096]).unwrap();
        }
    }

    let deadline = Instant::now() + READINESS_FOLLOWS_WITHIN;
    let reason = loop {
        assert_eq!(server.search().await, 200, "answers go on without a store");
        let (status, body) = server.readyz().await;
        if status == 503 {
            break body["reason"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {status} {body} with the store damaged"
        );
    };
    assert!(
        reason.contains("store") && reason.contains("sqlite"),
        "{reason}"
    );
    // `/metrics` says so too: the store is unavailable, and its failed write batches are counted.
    assert_eq!(server.metric("guidebot_store_unavailable").await, 1.0);
    let deadline = Instant::now() + READINESS_FOLLOWS_WITHIN;
    while server.metric("guidebot_store_failed_batches_total").await < 1.0 {
        assert!(Instant::now() < deadline, "no failed batch counted");
        assert_eq!(server.search().await, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.delete_store();
    let deadline = Instant::now() + READINESS_FOLLOWS_WITHIN;
    loop {
        let (status, body) = server.readyz().await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {status} {body} after the damaged file was removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.store.exists(), "a new file is in place");
    assert_eq!(server.metric("guidebot_store_reopened_total").await, 1.0);
    assert_eq!(server.metric("guidebot_store_unavailable").await, 0.0);
    assert_eq!(server.search().await, 200);
}

/// The SQLite file deleted while serving: the next store call opens a new file, `/metrics`
/// counts it in `guidebot_store_reopened_total`, and `/readyz` stays 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_store_deleted_while_serving_is_reopened_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = StoreServer::start(dir.path(), 17).await;
    assert_eq!(server.search().await, 200);
    assert_eq!(server.metric("guidebot_store_reopened_total").await, 0.0);

    server.delete_store();
    assert!(!server.store.exists());
    assert_eq!(server.search().await, 200);
    let deadline = Instant::now() + READINESS_FOLLOWS_WITHIN;
    while server.metric("guidebot_store_reopened_total").await < 1.0 {
        assert!(Instant::now() < deadline, "the reopening was never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.store.exists(), "a new file is in place");
    assert_eq!(server.readyz().await.0, 200);
    assert_eq!(server.search().await, 200);
    assert_eq!(server.metric("guidebot_store_reopened_total").await, 1.0);
    assert_eq!(server.readyz().await.0, 200);
}

/// The labelled sample `sample` (name and labels) in a metrics exposition, 0 when absent.
fn sample(metrics: &str, sample: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap_or(f64::NAN))
}

/// Issue 14: the docs said reloads were in `/metrics`, and only a unit test over a fake source
/// checked it. A real `serve` process: a SIGHUP after an edit is counted as `succeeded`, one after
/// a guide is broken as `failed` (and the previous guides keep serving).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_reloads_are_counted_in_metrics_by_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let ReloadableServer {
        key,
        mut server,
        base,
        metrics,
        corpus: _,
        guide,
        log_path,
    } = reloadable_server(19, dir.path(), Duration::from_secs(60)).await;
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let client = reqwest::Client::new();
    assert_eq!(reloads(&client, &metrics, "succeeded").await, 0.0);
    assert_eq!(reloads(&client, &metrics, "failed").await, 0.0);
    let pid = server.0.id() as i32;

    let mut text = std::fs::read_to_string(&guide).unwrap();
    text.push_str("\n## Reload marker\n\nA section added while serving.\n");
    std::fs::write(&guide, &text).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    reloads_reach(&client, &metrics, "succeeded", 1.0).await;
    assert_eq!(reloads(&client, &metrics, "failed").await, 0.0);

    std::fs::write(&guide, "+++\ntitle = \n+++\n\n# Broken\n\nText.\n").unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    reloads_reach(&client, &metrics, "failed", 1.0).await;
    assert_eq!(reloads(&client, &metrics, "succeeded").await, 1.0);
    assert!(signed_ping(&base, &key).await.is_some(), "still serving");
    support::setup::terminate(&mut server.0).await;
    assert!(log().contains("reload failed"), "{}", log());
}

/// `guidebot_reloads_total{outcome}` as the metrics address reports it now.
async fn reloads(client: &reqwest::Client, metrics: &str, outcome: &str) -> f64 {
    let text = client
        .get(metrics)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sample(
        &text,
        &format!("guidebot_reloads_total{{outcome=\"{outcome}\"}}"),
    )
}

/// Waits (at most a minute) until `guidebot_reloads_total{outcome}` is `wanted`.
async fn reloads_reach(client: &reqwest::Client, metrics: &str, outcome: &str, wanted: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = reloads(client, metrics, outcome).await;
        if now == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "guidebot_reloads_total{{outcome=\"{outcome}\"}} is {now}, not {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 14: an SQLite store that cannot be opened at start (here its path is a folder) used to
/// be reported only in the log while `/readyz` said "ready". The replica still serves (extractive
/// answers need no store), `/readyz` says it is degraded, naming the store and why, and
/// `/metrics` shows `guidebot_store_unavailable 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_store_that_cannot_be_opened_at_start_is_reported_by_readyz() {
    let key = SigningKey::from_bytes(&[21u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let not_a_file = dir.path().join("store-is-a-folder");
    std::fs::create_dir(&not_a_file).unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut command = http_server(&key, port, dir.path());
    command
        .env("GUIDEBOT_STORE_PATH", &not_a_file)
        .env("GUIDEBOT_BOT_USER_REQUESTS_PER_DAY", "5")
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut server, &base, Duration::from_secs(60)).await;
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    let store = body["store"].as_str().unwrap_or_default();
    assert!(
        store.contains("could not be opened")
            && store.contains("store-is-a-folder")
            && store.contains("budgets"),
        "{body}"
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&metrics, "guidebot_store_unavailable"),
        1.0,
        "{metrics}"
    );
    assert!(signed_ping(&base, &key).await.is_some());
}

/// The sum of every sample of `name` whose labels start with `labels` (e.g. every outcome of one
/// command) in a metrics exposition.
fn sum_of(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
        .filter(|rest| rest.starts_with(labels))
        .filter_map(|rest| rest.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum()
}

/// Issue 14 (a replayed signed request re-ran the command): the very same signed request sent
/// twice runs once, also with no store (`bot.store_path = ""`) and with a store that cannot be
/// opened: the second gets 401 `replayed`, and `/metrics` counts one `/search` and one replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_request_runs_once_with_no_store_an_unusable_one_or_a_working_one() {
    #[derive(PartialEq, Debug)]
    enum StoreCase {
        None,
        Unusable,
        Working,
    }
    for (seed, case) in [
        (23u8, StoreCase::None),
        (24u8, StoreCase::Unusable),
        (25u8, StoreCase::Working),
    ] {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let dir = tempfile::tempdir().unwrap();
        let store = match case {
            StoreCase::Unusable => {
                let folder = dir.path().join("store-is-a-folder");
                std::fs::create_dir(&folder).unwrap();
                folder.display().to_string()
            }
            StoreCase::None => String::new(),
            StoreCase::Working => dir.path().join("guidebot.sqlite").display().to_string(),
        };
        let (port, metrics_port) = (free_port(), free_port());
        let mut command = http_server(&key, port, dir.path());
        // An empty variable counts as unset: "no store" is said in a configuration file.
        let config = dir.path().join("guidebot.toml");
        std::fs::write(&config, format!("[bot]\nstore_path = {store:?}\n")).unwrap();
        let log_path = dir.path().join("serve.log");
        command
            .env_remove("GUIDEBOT_STORE_PATH")
            .arg("--config")
            .arg(&config)
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .stdout(std::fs::File::create(&log_path).unwrap())
            .stderr(Stdio::null());
        let mut server = Server(command.spawn().unwrap());
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&mut server, &base, Duration::from_secs(60)).await;

        let client = reqwest::Client::new();
        let body = support::fake_discord::interaction_command(
            APP_ID,
            "search",
            serde_json::json!([support::fake_discord::opt("query", "google l4 total comp")]),
            USER,
        )
        .to_string();
        let first = signed_interaction(&client, &base, &key, &body)
            .build()
            .unwrap();
        let copy = first.try_clone().expect("a body in memory");
        let answered = client.execute(first).await.unwrap();
        assert_eq!(
            answered.status(),
            200,
            "store {store:?}: {:?}",
            answered.text().await
        );
        let replay = client.execute(copy).await.unwrap();
        assert_eq!(replay.status(), 401, "store {store:?}");
        let reason: serde_json::Value = replay.json().await.unwrap();
        assert_eq!(reason["reason"], "replayed", "{reason}");

        let metrics = client
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            sum_of(&metrics, "guidebot_requests_total", "command=\"search\""),
            1.0,
            "the search ran once (store {store:?}): {metrics}"
        );
        assert_eq!(
            sample(
                &metrics,
                "guidebot_http_rejections_total{reason=\"replayed\"}"
            ),
            1.0,
            "{metrics}"
        );
        // The endpoint's own memory holds only what no store vouched for: a working store's ids
        // are not held twice.
        let held = if case == StoreCase::Working { 0.0 } else { 1.0 };
        assert_eq!(
            sample(&metrics, "guidebot_http_replay_ids"),
            held,
            "{case:?}: {metrics}"
        );
        support::setup::terminate(&mut server.0).await;
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert_eq!(
            log.contains("storage opened"),
            case == StoreCase::Working,
            "{log}"
        );
        if case == StoreCase::Unusable {
            assert!(log.contains("storage disabled"), "{log}");
        }
    }
}

/// A `serve --http` over a copy of the bundled corpus in `dir` (guides in `dir/corpus`), its log in
/// `dir/serve.log`, `/metrics` on a port of its own: returned once it answers and its SIGHUP
/// reloader is armed, for the tests that edit guides or the index under a live server.
struct ReloadableServer {
    key: SigningKey,
    server: Server,
    base: String,
    metrics: String,
    corpus: std::path::PathBuf,
    guide: std::path::PathBuf,
    log_path: std::path::PathBuf,
}

async fn reloadable_server(seed: u8, dir: &Path, ready_within: Duration) -> ReloadableServer {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let (corpus, guide) = support::setup::copy_of_bundled_corpus(dir);
    let log_path = dir.join("serve.log");
    let (port, metrics_port) = (free_port(), free_port());
    let mut command = http_server(&key, port, dir);
    command
        .arg("--corpus")
        .arg(&corpus)
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null());
    let mut server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut server, &base, ready_within).await;
    wait_for_armed_reloader(&mut server, &log_path).await;
    ReloadableServer {
        key,
        server,
        base,
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
        corpus,
        guide,
        log_path,
    }
}

/// A signed `/search` for `query` on `base`; the response's JSON as text (any status fails).
async fn search_text(
    client: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    query: &str,
) -> String {
    let body = support::fake_discord::interaction_command(
        APP_ID,
        "search",
        serde_json::json!([support::fake_discord::opt("query", query)]),
        USER,
    )
    .to_string();
    let response = signed_interaction(client, base, key, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Issue 14 ("a server plus a CLI on the same index can leave the server on the old guides"): a
/// `serve` process and `index --force` processes share one index folder while the guides change
/// six times. Each round, a CLI build and the server's reload (its file watcher, and a SIGHUP)
/// run together: every CLI build succeeds, no reload fails, and the server ends up answering from
/// the new guides; a CLI build after the reload does not take the server's index away. (With
/// builders that take no lock and clean up every other generation, as before, a build or a reload
/// failed in two of three runs: the race it loses is a few milliseconds wide, so this test is a
/// net, not a proof; `tests/index_faults.rs` pins the lock and the clean-up rule down.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_and_cli_builds_on_one_index_folder_end_on_the_new_guides() {
    let dir = tempfile::tempdir().unwrap();
    let ReloadableServer {
        key,
        mut server,
        base,
        metrics,
        corpus,
        guide,
        log_path,
    } = reloadable_server(25, dir.path(), Duration::from_secs(120)).await;
    let index = dir.path().join("index");
    let client = reqwest::Client::new();
    let pid = server.0.id() as i32;
    let cli_build = || {
        guidebot()
            .arg("--corpus")
            .arg(&corpus)
            .arg("--index")
            .arg(&index)
            .args(["index", "--force"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    let places = [
        "Zanzibar",
        "Reykjavik",
        "Tasmania",
        "Patagonia",
        "Svalbard",
        "Ushuaia",
    ];
    for (round, place) in places.into_iter().enumerate() {
        let mut text = std::fs::read_to_string(&guide).unwrap();
        text.push_str(&format!(
            "\n## Relocating to {place}\n\nA remote role lets you relocate to {place} (round {round}).\n"
        ));
        std::fs::write(&guide, &text).unwrap();
        let builder = cli_build();
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
        let built = builder.wait_with_output().unwrap();
        assert!(
            built.status.success(),
            "round {round}: the CLI build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );

        let query = format!("relocating to {place}");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !search_text(&client, &base, &key, &query)
            .await
            .contains(place)
        {
            if let Ok(Some(status)) = server.0.try_wait() {
                panic!("the server exited ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the server still answers from the old guides"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            reloads(&client, &metrics, "failed").await,
            0.0,
            "round {round}"
        );
    }

    // A CLI build after the server's reload: the server's generation was opened minutes ago at
    // most, so it stays, and the server keeps answering from it.
    let built = cli_build().wait_with_output().unwrap();
    assert!(built.status.success());
    assert!(search_text(&client, &base, &key, "relocating to Ushuaia")
        .await
        .contains("Ushuaia"));
    assert!(index.join(live_generation(&index)).is_dir());
    assert_eq!(reloads(&client, &metrics, "failed").await, 0.0);
    assert!(reloads(&client, &metrics, "succeeded").await >= 6.0);
    let log = support::setup::terminate(&mut server.0).await;
    let log = format!(
        "{log}{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    assert!(!log.contains("reload failed"), "{log}");
}

/// Issue 14 ("contain panics from the index library"): the live index damaged under a running
/// server so that Tantivy panics inside a search (the postings files overwritten in place, same
/// size; the checksums are only read on open). Each search through a real request gets a short
/// error answer rather than a dropped request, the panic stays inside the request (the process
/// keeps serving other commands and PING), and the next reload finds the damage on open,
/// rebuilds and answers from the guides again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_the_index_library_is_answered_and_the_server_keeps_serving() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let ReloadableServer {
        key,
        mut server,
        base,
        metrics,
        corpus: _,
        guide: _,
        log_path,
    } = reloadable_server(27, dir.path(), Duration::from_secs(60)).await;
    let index = dir.path().join("index");
    let client = reqwest::Client::new();
    let question = "system design interview";
    let healthy = search_text(&client, &base, &key, question).await;
    assert!(healthy.contains("embeds"), "{healthy}");

    let generation = index.join(live_generation(&index));
    let mut damaged = 0;
    for entry in std::fs::read_dir(&generation).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|extension| extension == "idx") {
            let length = std::fs::metadata(&path).unwrap().len();
            let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.write_all(&vec![0x5A; length.saturating_sub(16) as usize])
                .unwrap();
            file.sync_all().unwrap();
            damaged += 1;
        }
    }
    assert!(damaged > 0, "no postings file in {}", generation.display());

    for _ in 0..3 {
        let answer = search_text(&client, &base, &key, question).await;
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["type"], 4, "{answer}");
        assert_eq!(
            answer["data"]["flags"], 64,
            "a short private notice: {answer}"
        );
        assert!(
            answer
                .to_string()
                .contains("the search index failed on this question"),
            "{answer}"
        );
        assert!(server.0.try_wait().unwrap().is_none(), "the server is up");
    }
    let comp = support::fake_discord::interaction_command(
        APP_ID,
        "comp",
        serde_json::json!([support::fake_discord::opt("company", "Google")]),
        USER,
    )
    .to_string();
    let comp = signed_interaction(&client, &base, &key, &comp)
        .send()
        .await
        .unwrap();
    assert_eq!(comp.status(), 200);
    assert!(comp.text().await.unwrap().contains("Google"));
    assert!(signed_ping(&base, &key).await.is_some(), "still serving");

    let pid = server.0.id() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    reloads_reach(&client, &metrics, "succeeded", 1.0).await;
    let repaired = search_text(&client, &base, &key, question).await;
    assert!(!repaired.contains("search index failed"), "{repaired}");
    assert!(repaired.contains("embeds"), "{repaired}");
    let log = support::setup::terminate(&mut server.0).await;
    let log = format!(
        "{log}{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    assert!(log.contains("rebuilding the search index"), "{log}");
}

/// Issue 14 ("`serve` will not start" on an index with one changed byte in a `.fieldnorm`
/// file): the server finds the damage on open, says why it rebuilds, becomes ready and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_on_a_damaged_index_by_rebuilding_it() {
    let key = SigningKey::from_bytes(&[29u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let built = guidebot()
        .arg("--index")
        .arg(&index)
        .arg("index")
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let damaged = index.join(live_generation(&index));
    support::setup::flip_a_bit_of_the_fieldnorm_file(&damaged);

    let log_path = dir.path().join("serve.log");
    let port = free_port();
    let mut command = http_server(&key, port, dir.path());
    command
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null());
    let mut server = Server(command.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ready(&mut server, &base, Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    let answer = search_text(&client, &base, &key, "google l4 total comp").await;
    assert!(!answer.contains("search index failed"), "{answer}");
    assert_ne!(index.join(live_generation(&index)), damaged);
    support::setup::terminate(&mut server.0).await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("rebuilding the search index") && log.contains("checksum"),
        "the warning says why: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// Issue 14 (a pipe named `*.md` in the corpus blocked `serve`'s reload for good, and SIGTERM
/// then did not stop the process): a FIFO created in the corpus while serving is skipped by the
/// reload with a warning naming it, the reload succeeds, the server answers, and SIGTERM stops it
/// with exit code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipe_in_the_corpus_never_blocks_a_reload_or_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let ReloadableServer {
        key,
        mut server,
        base,
        metrics,
        corpus,
        guide,
        log_path,
    } = reloadable_server(31, dir.path(), Duration::from_secs(60)).await;
    let client = reqwest::Client::new();

    let pipe = corpus.join("pipe.md");
    let name = std::ffi::CString::new(pipe.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    let mut text = std::fs::read_to_string(&guide).unwrap();
    text.push_str("\n## Relocating to Madeira\n\nA remote role lets you relocate to Madeira.\n");
    std::fs::write(&guide, &text).unwrap();
    assert_eq!(unsafe { libc::kill(server.0.id() as i32, libc::SIGHUP) }, 0);
    // The file watcher may reload as well: at least one reload, none failed, the new guide served.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !search_text(&client, &base, &key, "relocating to Madeira")
        .await
        .contains("Madeira")
    {
        assert!(Instant::now() < deadline, "the reload never went live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The swap comes first, the count right after it.
    while reloads(&client, &metrics, "succeeded").await < 1.0 {
        assert!(Instant::now() < deadline, "the reload was never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reloads(&client, &metrics, "failed").await, 0.0);

    let started = Instant::now();
    support::setup::terminate(&mut server.0).await;
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("pipe.md") && log.contains("not a regular file"),
        "the warning names the pipe: {log}"
    );
}
