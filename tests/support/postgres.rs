//! A real PostgreSQL for the tests: `GUIDEBOT_TEST_POSTGRES_URL` names a server (`.ci/run` starts
//! a throwaway cluster and sets it); each test gets a fresh database on it, so tests running in
//! parallel never see each other's rows. Without the variable, Postgres tests print one "skipped"
//! line and return.

use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that names the test server.
pub const TEST_POSTGRES_VAR: &str = "GUIDEBOT_TEST_POSTGRES_URL";

/// The test server's URL, or `None` after printing why the test is skipped.
pub fn test_postgres_url(test: &str) -> Option<String> {
    match std::env::var(TEST_POSTGRES_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            // Written to stderr directly: the test harness would hide an `eprintln!` of a test
            // that passes, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: set {TEST_POSTGRES_VAR} to run the PostgreSQL test {test} (.ci/run does)"
            );
            None
        }
    }
}

/// A new, empty database on the server at `server_url`; returns its URL.
pub async fn fresh_database(server_url: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!(
        "guidebot_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    );
    let (client, connection) = tokio_postgres::connect(server_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL server");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = connection.await;
    let mut url = reqwest::Url::parse(server_url).expect("a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// A fresh database's URL for `test`, or `None` (skipped) without a server.
pub async fn fresh_database_for(test: &str) -> Option<String> {
    let server = test_postgres_url(test)?;
    Some(fresh_database(&server).await)
}
