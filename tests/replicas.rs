//! Two `guidebot serve --http` processes against one PostgreSQL database, as two replicas behind a
//! load balancer: concurrent signed `/ask` requests from one user across both never pass the
//! user's daily LLM budget, a replayed interaction is dropped by the other replica, and
//! `guidebot report` sees every question from both after they stop; an `/ask` follow-up in a
//! thread is read with the question asked of the other replica. Needs
//! `GUIDEBOT_TEST_POSTGRES_URL` (`.ci/run` sets it); skipped with a line without it.

mod support;

use ed25519_dalek::SigningKey;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fake_discord::{self as fd, FakeDiscord};
use support::fake_llm::*;

const DAILY_BUDGET: usize = 3;
const REQUESTS: usize = 12;

use support::setup::{free_port, Process as Replica};

fn guidebot(database: &str) -> Command {
    let mut command = support::setup::guidebot_command();
    command.env("GUIDEBOT_STORE_URL", database);
    command
}

async fn signed_post(
    client: &reqwest::Client,
    base: &str,
    key: &SigningKey,
    body: &str,
) -> (u16, Value) {
    let response = support::setup::signed_interaction(client, base, key, body)
        .send()
        .await
        .expect("the replica answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Starts two `serve --http` replicas on one database, each with its own index folder under
/// `dir`, `configure` adding each one's settings, and waits until both are ready; returns their
/// base URLs and processes.
async fn start_two_replicas(
    database: &str,
    dir: &std::path::Path,
    key: &SigningKey,
    configure: impl Fn(&mut Command),
) -> (Vec<String>, Vec<Replica>) {
    let mut bases = Vec::new();
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let port = free_port();
        let mut command = guidebot(database);
        command
            .args(["serve", "--http", &format!("127.0.0.1:{port}")])
            .arg("--index")
            .arg(dir.join(format!("index-{name}")))
            .env(
                "DISCORD_PUBLIC_KEY",
                hex::encode(key.verifying_key().to_bytes()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        configure(&mut command);
        replicas.push(Replica(command.spawn().unwrap()));
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    for (base, replica) in bases.iter().zip(replicas.iter_mut()) {
        support::setup::wait_until_ready(replica, base, Duration::from_secs(120)).await;
    }
    (bases, replicas)
}

async fn stop(mut replica: Replica) -> String {
    support::setup::terminate(&mut replica.0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_budget_and_one_report() {
    let Some(database) =
        support::postgres::fresh_database_for("two_replicas_share_one_budget_and_one_report").await
    else {
        return;
    };
    let discord = FakeDiscord::start().await;
    let llm = FakeLlm::openai_google_l4_answer().await;
    let key = SigningKey::from_bytes(&[9u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (bases, replicas) = start_two_replicas(&database, dir.path(), &key, |command| {
        command
            .env("DISCORD_API_BASE", discord.base_url())
            .env("GUIDEBOT_LLM_PROVIDER", "openai")
            .env("GUIDEBOT_LLM_MODEL", "test-model")
            .env("GUIDEBOT_LLM_BASE_URL", llm.base_url())
            .env("GUIDEBOT_LLM_API_KEY", "sk-test-replicas")
            .env("GUIDEBOT_LLM_MAX_RETRIES", "0")
            .env("GUIDEBOT_BOT_LLM_COOLDOWN_SECS", "0")
            .env("GUIDEBOT_BOT_ANSWER_CACHE_SECS", "0")
            .env(
                "GUIDEBOT_BOT_USER_REQUESTS_PER_DAY",
                DAILY_BUDGET.to_string(),
            );
    })
    .await;

    // One user, many questions at once, alternating between the replicas.
    let user = 4_242_424_242;
    let bodies: Vec<String> = (0..REQUESTS)
        .map(|n| {
            fd::interaction_command(
                discord.application_id(),
                "ask",
                json!([fd::opt(
                    "question",
                    format!("whats the TC for a google L4 MLE? ({n})")
                )]),
                user,
            )
            .to_string()
        })
        .collect();
    let answers = futures::future::join_all(bodies.iter().enumerate().map(|(n, body)| {
        let (client, base, key) = (&client, &bases[n % 2], &key);
        async move { signed_post(client, base, key, body).await }
    }))
    .await;
    let deferred = answers
        .iter()
        .filter(|(status, reply)| *status == 200 && reply["type"] == 5)
        .count();
    let over_budget = answers
        .iter()
        .filter(|(status, reply)| {
            *status == 200 && reply["type"] == 4 && reply.to_string().contains("budget")
        })
        .count();
    assert_eq!(
        deferred, DAILY_BUDGET,
        "exactly the daily budget of LLM answers across both replicas: {answers:?}"
    );
    assert_eq!(over_budget, REQUESTS - DAILY_BUDGET, "{answers:?}");

    // The LLM answers finish (their final edits reach Discord); the LLM was called only that often.
    let edits = discord
        .wait_for_requests(
            |request| {
                request.method == "PATCH"
                    && request
                        .body
                        .as_ref()
                        .is_some_and(|body| body.to_string().contains("$300k"))
            },
            DAILY_BUDGET,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(edits.len(), DAILY_BUDGET);
    assert_eq!(llm.requests().await.len(), DAILY_BUDGET);

    // A replay of an answered interaction, sent to the other replica, is dropped.
    let (status, reply) = signed_post(&client, &bases[1], &key, &bodies[0]).await;
    assert_eq!(status, 401, "{reply}");
    assert_eq!(reply["reason"], "replayed", "{reply}");

    // A clean stop drains both writers; the report reads every question from both.
    for replica in replicas {
        let logs = stop(replica).await;
        assert!(logs.contains("storage writes drained"), "{logs}");
        assert!(!logs.contains("sk-test-replicas"), "no key in the logs");
    }
    let output = guidebot(&database)
        .args(["report", "--json"])
        .output()
        .unwrap();
    let report = support::setup::success_json(&output);
    assert_eq!(report["questions"], REQUESTS as u64, "{report}");
}

/// `/ask` in a thread on one replica, then a follow-up in the same thread on the other: the
/// history is in the shared database, so the follow-up ("how about openai?") is read with the
/// first question and answered with OpenAI's row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_in_a_thread_is_answered_by_the_other_replica() {
    let Some(database) = support::postgres::fresh_database_for(
        "a_follow_up_in_a_thread_is_answered_by_the_other_replica",
    )
    .await
    else {
        return;
    };
    let key = SigningKey::from_bytes(&[11u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (bases, replicas) = start_two_replicas(&database, dir.path(), &key, |_| {}).await;
    let thread = fd::next_snowflake();
    let ask_in_thread = |question: &str| {
        fd::in_thread(
            fd::interaction_command(
                1,
                "ask",
                json!([fd::opt("question", question)]),
                4_242_424_243,
            ),
            thread,
            "a thread",
        )
        .to_string()
    };
    let (status, first) = signed_post(
        &client,
        &bases[0],
        &key,
        &ask_in_thread("what's anthropic's mid level total comp"),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert!(first.to_string().contains("$450k–$700k+"), "{first}");
    let (status, follow_up) = signed_post(
        &client,
        &bases[1],
        &key,
        &ask_in_thread("how about openai?"),
    )
    .await;
    assert_eq!(status, 200, "{follow_up}");
    assert!(
        follow_up.to_string().contains("$500k–$900k+"),
        "{follow_up}"
    );
    for replica in replicas {
        stop(replica).await;
    }
}

/// No database at start: the replica serves `/healthz` but `/readyz` says not ready and why, and
/// the logs say why too (without the password); it keeps retrying and stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_at_start_keeps_readyz_not_ready_and_says_why() {
    let closed = free_port();
    let port = free_port();
    let key = SigningKey::from_bytes(&[5u8; 32]);
    let dir = tempfile::tempdir().unwrap();
    let mut command = guidebot(&format!(
        "postgres://guidebot:hunter2@127.0.0.1:{closed}/guidebot"
    ));
    command
        .args(["serve", "--http", &format!("127.0.0.1:{port}")])
        .arg("--index")
        .arg(dir.path().join("index"))
        .env(
            "DISCORD_PUBLIC_KEY",
            hex::encode(key.verifying_key().to_bytes()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut replica = Replica(command.spawn().unwrap());
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let reason = loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
                assert_eq!(ready.status().as_u16(), 503);
                let body: Value = ready.json().await.unwrap();
                if body["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("unreachable"))
                {
                    break body["reason"].to_string();
                }
            }
        }
        assert!(Instant::now() < deadline, "no not-ready reason given");
        if let Ok(Some(status)) = replica.0.try_wait() {
            panic!("replica exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!reason.contains("hunter2"), "{reason}");
    let logs = stop(replica).await;
    assert!(logs.contains("database not ready"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}

/// `guidebot store migrate --from FILE` copies an SQLite file into the configured PostgreSQL once
/// (a second copy needs `--append`), and `guidebot report` then reads PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_copies_an_sqlite_file_into_postgres_and_report_reads_it() {
    use guidebot::store::{QuestionRecord, SqliteStore, Store};
    let Some(database) = support::postgres::fresh_database_for(
        "store_migrate_copies_an_sqlite_file_into_postgres_and_report_reads_it",
    )
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.sqlite");
    {
        let source = SqliteStore::open(&file).unwrap();
        for (n, refused) in [(0, false), (1, true), (2, false)] {
            source
                .record_question(&QuestionRecord {
                    at_unix: guidebot::util::clock::now_unix(),
                    user_hash: "u".into(),
                    guild_hash: None,
                    command: "ask".into(),
                    question: format!("question {n}"),
                    refused,
                    mode: "extractive".into(),
                    top_coverage: None,
                    answer_key: None,
                    citations: vec![],
                    fingerprint: "f".into(),
                })
                .await
                .unwrap();
        }
    }
    let run = |args: &[&str]| {
        let output = guidebot(&database).args(args).output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, text) = run(&["store", "migrate", "--from", file.to_str().unwrap()]);
    assert!(ok, "{text}");
    let applied = format!(
        "{} migration(s) applied",
        guidebot::store::POSTGRES_MIGRATIONS.len()
    );
    assert!(text.contains(&applied), "{text}");
    assert!(text.contains("Copied 3 question(s)"), "{text}");
    let (ok, text) = run(&["store", "migrate", "--from", file.to_str().unwrap()]);
    assert!(!ok, "a second copy is refused: {text}");
    assert!(text.contains("--append"), "{text}");
    let (ok, text) = run(&["report", "--json"]);
    assert!(ok, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["questions"], 3, "{report}");
    assert!((report["refusal_rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
}
