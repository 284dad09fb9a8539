//! Load generator for the HTTP interactions endpoint: signed `/comp` and `/search` interactions over
//! N keep-alive HTTP/1.1 connections, reporting requests/s, p50/p90/p99/max latency, errors and the
//! server's resident memory sampled over time.
//!
//! ```text
//! # server and load generator in one process (they share the runtime and the cores):
//! cargo run --release --example http_load -- --connections 32 --seconds 30
//! # server alone (prints its pid), then the load from another process:
//! cargo run --release --example http_load -- --serve 127.0.0.1:8787
//! cargo run --release --example http_load -- --target http://127.0.0.1:8787 --server-pid PID
//! # the same server driven by wrk (precomputed signatures, so widen the replay window):
//! cargo run --release --example http_load -- --serve 127.0.0.1:8787 --replay-window-secs 86400 &
//! cargo run --release --example http_load -- --wrk-script /tmp/guidebot.lua
//! wrk -t1 -c32 -d30s --latency -s /tmp/guidebot.lua http://127.0.0.1:8787
//! ```
//!
//! Options: `--connections N` (32), `--seconds S` (20), `--sample-every S` (5: one line of
//! throughput, latency and RSS per interval), `--workers N` (tokio worker threads, default: cores),
//! `--corpus DIR` (corpus), `--logs` (JSON info logs of the server on stdout, as in production),
//! `--mix comp|search|ask|both` (both = /comp and /search), `--replay-window-secs S` (server),
//! `--wrk-script FILE` (write the wrk script and exit), `--fresh-ids` (every request gets a new
//! interaction id and is signed when sent: needed against `guidebot serve`, which answers a
//! repeated id with 401 as a replay, with or without a store).
//!
//! Without `--fresh-ids` the same pre-signed requests are sent again and again (and wrk can only
//! do that): the in-process server of this example (`--serve`, or no `--target`) then runs with
//! its replay memory off (`HttpSettings::remembered_ids = 0`), which `guidebot serve` never does.
//! With `--fresh-ids` it keeps the memory on, as in production.
//!
//! Against `guidebot serve` (signed `/ask`, extractive, with its store):
//!
//! ```text
//! export DISCORD_PUBLIC_KEY=$(target/release/examples/http_load --public-key)
//! GUIDEBOT_STORE_URL=postgres://... target/release/guidebot serve --http 127.0.0.1:8787 &
//! cargo run --release --example http_load -- --target http://127.0.0.1:8787 --server-pid $! \
//!   --mix ask --fresh-ids
//! ```
//! The signing key is fixed (seed `[7; 32]`); a server started with `--serve` uses it. Requests are
//! re-signed every 60 s so long soaks stay inside the 5-minute replay window.

#[path = "support/load.rs"]
mod load;

use ed25519_dalek::{Signer, SigningKey};
use guidebot::bot::{BotSettings, Dispatcher};
use guidebot::corpus::Corpus;
use guidebot::engine::{Engine, EngineHandle};
use guidebot::metrics::Metrics;
use guidebot::transport::http::{run, AppState, HttpSettings};
use load::{interaction, percentile, rss_kib, snowflake_now};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const COMPANIES: &[&str] = &[
    "Google",
    "Meta",
    "Netflix",
    "OpenAI",
    "Anthropic",
    "Databricks",
];
const QUERIES: &[&str] = &[
    "system design interview",
    "promotion to senior",
    "how to negotiate an offer",
    "what projects should I build",
    "L4 vs L5 expectations",
    "mentoring juniors",
];

struct Options {
    target: Option<String>,
    serve: Option<String>,
    server_pid: Option<u32>,
    connections: usize,
    seconds: u64,
    sample_every: u64,
    workers: Option<usize>,
    corpus: PathBuf,
    logs: bool,
    replay_window_secs: Option<u64>,
    wrk_script: Option<PathBuf>,
    mix: String,
    fresh_ids: bool,
}

fn parse_options() -> Options {
    let mut options = Options {
        target: None,
        serve: None,
        server_pid: None,
        connections: 32,
        seconds: 20,
        sample_every: 5,
        workers: None,
        corpus: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus")),
        logs: false,
        replay_window_secs: None,
        wrk_script: None,
        mix: "both".to_string(),
        fresh_ids: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--target" => options.target = Some(value()),
            "--serve" => options.serve = Some(value()),
            "--server-pid" => options.server_pid = Some(value().parse().expect("a pid")),
            "--connections" => options.connections = value().parse().expect("a number"),
            "--seconds" => options.seconds = value().parse().expect("a number"),
            "--sample-every" => options.sample_every = value().parse().expect("a number"),
            "--workers" => options.workers = Some(value().parse().expect("a number")),
            "--corpus" => options.corpus = PathBuf::from(value()),
            "--logs" => options.logs = true,
            "--replay-window-secs" => {
                options.replay_window_secs = Some(value().parse().expect("a number"))
            }
            "--mix" => options.mix = value(),
            "--fresh-ids" => options.fresh_ids = true,
            "--public-key" => {
                println!("{}", hex::encode(signing_key().verifying_key().to_bytes()));
                std::process::exit(0);
            }
            "--wrk-script" => options.wrk_script = Some(PathBuf::from(value())),
            other => panic!("unknown option {other} (see the file's header for usage)"),
        }
    }
    options
}

fn main() {
    let options = parse_options();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = options.workers {
        runtime.worker_threads(workers);
    }
    runtime.build().unwrap().block_on(main_async(options));
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

async fn start_server(options: &Options, addr: &str) -> (String, tokio::sync::oneshot::Sender<()>) {
    if options.logs {
        guidebot::telemetry::init_for_server(guidebot::telemetry::LogFormat::Json, "info");
    }
    let corpus = Corpus::load(&options.corpus).expect("corpus loads");
    let engines = Arc::new(EngineHandle::new(
        Engine::in_memory(corpus, None).expect("engine"),
    ));
    let metrics = Arc::new(Metrics::new());
    let dispatcher = Arc::new(Dispatcher::new(
        engines,
        BotSettings::default(),
        metrics.clone(),
    ));
    let mut settings = HttpSettings::new(hex::encode(signing_key().verifying_key().to_bytes()));
    if let Some(secs) = options.replay_window_secs {
        settings.replay_window = Duration::from_secs(secs);
    }
    if !options.fresh_ids {
        // Pre-signed requests repeat their ids: with the memory on, every repeat would be a 401.
        settings.remembered_ids = 0;
    }
    let state = AppState::new(dispatcher, metrics, settings).expect("state");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(listener, state, async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

async fn main_async(options: Options) {
    if let Some(path) = &options.wrk_script {
        std::fs::write(path, wrk_script(&options.mix)).expect("write the wrk script");
        eprintln!(
            "wrote {} (signatures valid while the server's replay window covers now)",
            path.display()
        );
        return;
    }
    if let Some(addr) = options.serve.clone() {
        let (url, _stop) = start_server(&options, &addr).await;
        eprintln!(
            "serving {url}/interactions (pid {}, public key {}); Ctrl-C to stop",
            std::process::id(),
            hex::encode(signing_key().verifying_key().to_bytes())
        );
        let _ = tokio::signal::ctrl_c().await;
        return;
    }
    let (url, _stop) = match options.target.clone() {
        Some(url) => (url, None),
        None => {
            let (url, stop) = start_server(&options, "127.0.0.1:0").await;
            (url, Some(stop))
        }
    };
    let pid = options.server_pid.unwrap_or_else(std::process::id);
    let authority = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    let requests = Arc::new(arc_swap::ArcSwap::from_pointee(signed_requests(
        &options.mix,
    )));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let interval = Arc::new(Mutex::new(Vec::<u32>::with_capacity(1 << 20)));
    let all = Arc::new(Mutex::new(Vec::<u32>::with_capacity(1 << 22)));

    // Fresh signatures every minute.
    {
        let requests = Arc::clone(&requests);
        let stop = Arc::clone(&stop);
        let mix = options.mix.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(60)).await;
                requests.store(Arc::new(signed_requests(&mix)));
            }
        });
    }

    eprintln!(
        "load: {} connections for {} s against {url} (server pid {pid}, RSS {} KiB at start)",
        options.connections,
        options.seconds,
        rss_kib(pid).unwrap_or(0)
    );
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.connections {
        let authority = authority.clone();
        let requests = Arc::clone(&requests);
        let stop = Arc::clone(&stop);
        let errors = Arc::clone(&errors);
        let interval = Arc::clone(&interval);
        let fresh = options.fresh_ids.then(|| options.mix.clone());
        workers.push(tokio::spawn(async move {
            let load = Load {
                requests: &requests,
                fresh,
                stop: &stop,
                errors: &errors,
                latencies: &interval,
            };
            connection(worker, &authority, &load).await
        }));
    }

    let deadline = started + Duration::from_secs(options.seconds);
    let mut last = Instant::now();
    let mut rss_samples = Vec::new();
    println!("   t(s)     req/s   p50(ms)   p99(ms)   max(ms)  errors   rss(KiB)");
    while Instant::now() < deadline {
        let next = (last + Duration::from_secs(options.sample_every)).min(deadline);
        tokio::time::sleep_until(next.into()).await;
        let mut batch = std::mem::take(&mut *interval.lock().unwrap());
        let elapsed = last.elapsed().as_secs_f64();
        last = Instant::now();
        let rss = rss_kib(pid).unwrap_or(0);
        rss_samples.push(rss);
        batch.sort_unstable();
        println!(
            "{:7.0} {:9.0} {:9.3} {:9.3} {:9.3} {:7} {:10}",
            started.elapsed().as_secs_f64(),
            batch.len() as f64 / elapsed,
            percentile(&batch, 0.50),
            percentile(&batch, 0.99),
            percentile(&batch, 1.0),
            errors.load(Ordering::Relaxed),
            rss
        );
        all.lock().unwrap().extend_from_slice(&batch);
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let total_elapsed = started.elapsed().as_secs_f64();
    let mut all = std::mem::take(&mut *all.lock().unwrap());
    all.extend_from_slice(&interval.lock().unwrap());
    all.sort_unstable();
    println!(
        "total: {} requests in {:.1} s = {:.0} req/s; latency ms p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3}; errors {}; RSS KiB min {} max {}",
        all.len(),
        total_elapsed,
        all.len() as f64 / total_elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        percentile(&all, 1.0),
        errors.load(Ordering::Relaxed),
        rss_samples.iter().min().unwrap_or(&0),
        rss_samples.iter().max().unwrap_or(&0),
    );
}

/// What the connections share: the pre-signed requests (or the mix to sign fresh ones from), the
/// stop flag, the error count and the latency samples.
struct Load<'a> {
    requests: &'a arc_swap::ArcSwap<Vec<(Vec<u8>, String, String)>>,
    fresh: Option<String>,
    stop: &'a AtomicBool,
    errors: &'a AtomicU64,
    latencies: &'a Mutex<Vec<u32>>,
}

/// One keep-alive connection sending requests back to back until `stop`; reconnects after errors.
async fn connection(worker: usize, authority: &str, load: &Load<'_>) {
    let Load {
        requests,
        fresh,
        stop,
        errors,
        latencies,
    } = load;
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let key = signing_key();
    let mut n = worker;
    let mut local: Vec<u32> = Vec::with_capacity(256);
    'reconnect: while !stop.load(Ordering::Relaxed) {
        let Some(mut sender) = load::connect(authority).await else {
            errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            let set = requests.load();
            let fresh_request;
            let (body, signature, timestamp) = match fresh {
                // A new interaction id each time, signed now (the client pays for the signature).
                Some(mix) => {
                    let uses = uses(mix);
                    let (name, option, value) = uses[n % uses.len()];
                    // A snowflake of now, as Discord's: a later run against the same database
                    // never repeats it (the server would answer 401, replayed).
                    let id = snowflake_now(NEXT_ID.fetch_add(1, Ordering::Relaxed));
                    let body = interaction(id, name, option, value)
                        .to_string()
                        .into_bytes();
                    let timestamp = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_secs()
                        .to_string();
                    let message = [timestamp.as_bytes(), &body].concat();
                    let signature = hex::encode(key.sign(&message).to_bytes());
                    fresh_request = (body, signature, timestamp);
                    &fresh_request
                }
                None => &set[n % set.len()],
            };
            n += 1;
            let sent = Instant::now();
            let ok =
                load::send_signed(&mut sender, authority, body.clone(), signature, timestamp).await;
            local.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
            if local.len() >= 64 {
                latencies.lock().unwrap().append(&mut local);
            }
            if !ok {
                errors.fetch_add(1, Ordering::Relaxed);
                continue 'reconnect;
            }
        }
    }
    latencies.lock().unwrap().append(&mut local);
}

/// The commands of `mix`: (command, option, value) for `/comp`, `/search` and `/ask`.
fn uses(mix: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    for (company, query) in COMPANIES.iter().zip(QUERIES) {
        for (name, option, value) in [
            ("comp", "company", *company),
            ("search", "query", *query),
            ("ask", "question", *query),
        ] {
            let wanted = match mix {
                "both" => name != "ask",
                other => other == name,
            };
            if wanted {
                out.push((name, option, value));
            }
        }
    }
    out
}

/// Ids of interactions signed once and sent many times (a server without a store): fixed numbers,
/// not snowflakes of a time.
const FIXED_ID_BASE: u64 = 1_200_000_000_000_000_000;

/// Signed interactions of `mix`, timestamped now: (body, signature, timestamp).
fn signed_requests(mix: &str) -> Vec<(Vec<u8>, String, String)> {
    let key = signing_key();
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    uses(mix)
        .into_iter()
        .enumerate()
        .map(|(i, (name, option, value))| {
            let body = interaction(FIXED_ID_BASE + i as u64, name, option, value)
                .to_string()
                .into_bytes();
            let message = [timestamp.as_bytes(), &body].concat();
            let signature = hex::encode(key.sign(&message).to_bytes());
            (body, signature, timestamp.clone())
        })
        .collect()
}

/// A wrk Lua script cycling through [`signed_requests`] (fixed signatures and timestamps).
fn wrk_script(mix: &str) -> String {
    let lua = |text: &str| format!("{text:?}");
    let mut script = String::from("local requests = {}\n");
    for (body, signature, timestamp) in signed_requests(mix) {
        script.push_str(&format!(
            "table.insert(requests, wrk.format(\"POST\", \"/interactions\", {{[\"Content-Type\"] = \"application/json\", [\"X-Signature-Ed25519\"] = {}, [\"X-Signature-Timestamp\"] = {}}}, {}))\n",
            lua(&signature),
            lua(&timestamp),
            lua(std::str::from_utf8(&body).unwrap())
        ));
    }
    script.push_str(
        "local i = 0\nrequest = function()\n  i = i + 1\n  return requests[(i % #requests) + 1]\nend\n",
    );
    script
}
