//! External load generator for a running interactions endpoint (guidebot's or the Python peer's in
//! `../shared/peers`): signed `/search` or `/ask` interactions cycling through a questions file, a
//! new interaction id and signature for every request (as Discord sends them; a replayed id would
//! be dropped), over N keep-alive HTTP/1.1 connections. Reports requests/s, p50/p99/max latency,
//! errors and, given the server's pid, its RSS at the end.
//!
//! ```text
//! cargo build --release --example signed_load
//! target/release/examples/signed_load --target http://127.0.0.1:8080 --seed HEX \
//!     [--questions tests/eval/dev3.toml] [--command search|ask] [--connections 32] \
//!     [--seconds 15] [--warmup 2] [--server-pid PID] [--workers 1]
//! ```
//!
//! `--seed` is the hex seed of the Ed25519 key whose public half the server was given
//! (`DISCORD_PUBLIC_KEY`); `--print-public-key` prints it and exits. Questions: a `tests/eval` TOML
//! set (answerable and off-topic questions) or a text file with one question a line. The output's
//! last line is `RESULT rps=… p50_ms=… p99_ms=… max_ms=… errors=… rss_kib=…` for scripts.

#[path = "support/load.rs"]
mod load;

use ed25519_dalek::{Signer, SigningKey};
use load::{interaction, percentile, rss_kib, snowflake_now};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Options {
    target: String,
    seed: [u8; 32],
    questions: String,
    command: String,
    connections: usize,
    seconds: u64,
    warmup: u64,
    server_pid: Option<u32>,
    workers: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        target: String::new(),
        seed: [7; 32],
        questions: "tests/eval/dev3.toml".to_string(),
        command: "search".to_string(),
        connections: 32,
        seconds: 15,
        warmup: 2,
        server_pid: None,
        workers: 1,
    };
    let mut print_key = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => options.target = value()?,
            "--seed" => {
                let bytes = hex::decode(value()?).map_err(|error| format!("--seed: {error}"))?;
                options.seed = bytes
                    .try_into()
                    .map_err(|_| "--seed must be 32 bytes of hex".to_string())?;
            }
            "--questions" => options.questions = value()?,
            "--command" => options.command = value()?,
            "--connections" => {
                options.connections = value()?.parse().map_err(|_| "--connections")?
            }
            "--seconds" => options.seconds = value()?.parse().map_err(|_| "--seconds")?,
            "--warmup" => options.warmup = value()?.parse().map_err(|_| "--warmup")?,
            "--server-pid" => {
                options.server_pid = Some(value()?.parse().map_err(|_| "--server-pid")?)
            }
            "--workers" => options.workers = value()?.parse().map_err(|_| "--workers")?,
            "--print-public-key" => print_key = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; see examples/signed_load.rs"
                ))
            }
        }
    }
    if print_key {
        println!(
            "{}",
            hex::encode(
                SigningKey::from_bytes(&options.seed)
                    .verifying_key()
                    .to_bytes()
            )
        );
        std::process::exit(0);
    }
    if options.target.is_empty() {
        return Err("--target URL is required".to_string());
    }
    if !matches!(options.command.as_str(), "search" | "ask") {
        return Err("--command is search or ask".to_string());
    }
    Ok(options)
}

/// The questions of a TOML eval set (answerable then off-topic) or of a text file, one a line.
fn questions(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    if path.ends_with(".toml") {
        let set = guidebot::eval::EvalSet::parse(path, &text).map_err(|error| error.to_string())?;
        Ok(set
            .questions
            .iter()
            .map(|question| question.text.clone())
            .chain(set.off_topic.iter().map(|question| question.text.clone()))
            .collect())
    } else {
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect())
    }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let questions = match questions(&options.questions) {
        Ok(questions) if !questions.is_empty() => questions,
        Ok(_) => {
            eprintln!("error: no questions in {}", options.questions);
            std::process::exit(2);
        }
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.workers.max(1))
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(options, Arc::new(questions)));
}

/// What every connection shares.
struct Shared {
    key: SigningKey,
    questions: Arc<Vec<String>>,
    command: String,
    next: AtomicU64,
    recording: AtomicBool,
    stop: AtomicBool,
    errors: AtomicU64,
    latencies: Mutex<Vec<u32>>,
}

async fn run(options: Options, questions: Arc<Vec<String>>) {
    let authority = options
        .target
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let shared = Arc::new(Shared {
        key: SigningKey::from_bytes(&options.seed),
        questions,
        command: options.command.clone(),
        // Counts requests: the question to ask and the low bits of the id (a snowflake of the
        // time it is made, so two runs against one server never share ids).
        next: AtomicU64::new(0),
        recording: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        errors: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
    });
    let tasks: Vec<_> = (0..options.connections)
        .map(|_| {
            let shared = Arc::clone(&shared);
            let authority = authority.clone();
            tokio::spawn(async move { connection(&authority, &shared).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(options.warmup)).await;
    shared.errors.store(0, Ordering::Relaxed);
    shared.recording.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    shared.recording.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let rss = options.server_pid.and_then(rss_kib);
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let mut samples = std::mem::take(&mut *shared.latencies.lock().expect("latencies"));
    samples.sort_unstable();
    let rps = samples.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{} {} over {} connections for {:.1} s: {} requests, {:.0} req/s",
        options.target,
        options.command,
        options.connections,
        elapsed.as_secs_f64(),
        samples.len(),
        rps
    );
    println!(
        "RESULT rps={rps:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={} rss_kib={}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
        shared.errors.load(Ordering::Relaxed),
        rss.map_or("-".to_string(), |rss| rss.to_string())
    );
}

/// The next interaction: a new id and the next question, signed with the current second.
fn next_request(shared: &Shared) -> (Vec<u8>, String, String) {
    let n = shared.next.fetch_add(1, Ordering::Relaxed);
    let question = &shared.questions[n as usize % shared.questions.len()];
    let option = if shared.command == "ask" {
        "question"
    } else {
        "query"
    };
    let body = interaction(snowflake_now(n), &shared.command, option, question)
        .to_string()
        .into_bytes();
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
        .to_string();
    let mut message = timestamp.clone().into_bytes();
    message.extend_from_slice(&body);
    let signature = hex::encode(shared.key.sign(&message).to_bytes());
    (body, signature, timestamp)
}

/// One keep-alive connection sending requests back to back until told to stop; reconnects after
/// errors. A request counts as answered when the status is 200 and the body is a reply (type 4)
/// or a deferral (type 5).
async fn connection(authority: &str, shared: &Shared) {
    let mut local: Vec<u32> = Vec::with_capacity(256);
    'reconnect: while !shared.stop.load(Ordering::Relaxed) {
        let Some(mut sender) = load::connect(authority).await else {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !shared.stop.load(Ordering::Relaxed) {
            let (body, signature, timestamp) = next_request(shared);
            let sent = Instant::now();
            let ok = load::send_signed(&mut sender, authority, body, &signature, &timestamp).await;
            let recording = shared.recording.load(Ordering::Relaxed);
            if recording {
                local.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if local.len() >= 64 {
                    if let Ok(mut all) = shared.latencies.lock() {
                        all.append(&mut local);
                    }
                }
            }
            if !ok {
                if recording {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                continue 'reconnect;
            }
        }
    }
    if let Ok(mut all) = shared.latencies.lock() {
        all.append(&mut local);
    }
}
