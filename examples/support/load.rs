//! What the load tools share: the interaction JSON Discord sends, one keep-alive connection and a
//! signed request over it, percentiles, a process's RSS.

use serde_json::{json, Value};

/// The application id every generated interaction names.
pub const APP_ID: u64 = 800_000_000_000_000_002;

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A snowflake made now, as Discord makes interaction ids (`(ms since 2015) << 22 | 22 low
/// bits`), with `sequence` (wrapping) in the low bits: a server checks fresh ids against replays
/// by their time, so generated ids must carry the time they were made. Two ids are equal only when
/// made in the same millisecond with sequences 4,194,304 apart: never within one run, and runs do
/// not overlap.
pub fn snowflake_now(sequence: u64) -> u64 {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    (unix_ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | (sequence & 0x3F_FFFF)
}

/// A slash command interaction with id `id` as Discord sends it to an endpoint (the fields
/// serenity requires).
pub fn interaction(id: u64, name: &str, option: &str, value: &str) -> Value {
    let user = json!({"id": "700000000000000001", "username": "load", "discriminator": "0",
        "global_name": "load", "avatar": null, "bot": false, "public_flags": 0});
    json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": 2,
        "token": format!("load-token-{id}"),
        "version": 1,
        "guild_id": "900000000000000001",
        "channel_id": "900000000000000002",
        "channel": {"id": "900000000000000002", "type": 0, "name": "general", "guild_id": "900000000000000001"},
        "member": {"user": user, "nick": null, "avatar": null, "roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "premium_since": null, "deaf": false, "mute": false, "flags": 0, "pending": false, "permissions": "2248473465835073"},
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": "900000000000000001"},
        "context": 0,
        "attachment_size_limit": 26_214_400,
        "data": {"id": "1200000000000000999", "name": name, "type": 1,
            "options": [{"name": option, "type": 3, "value": value}], "guild_id": "900000000000000001"}
    })
}

/// Milliseconds at quantile `q` of sorted microsecond samples.
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index] as f64 / 1000.0
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// A keep-alive HTTP/1.1 connection to `authority` (its driver runs in its own task); `None` when
/// connecting or the handshake failed.
pub async fn connect(
    authority: &str,
) -> Option<hyper::client::conn::http1::SendRequest<axum::body::Body>> {
    let tcp = tokio::net::TcpStream::connect(authority).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake::<_, axum::body::Body>(
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .ok()?;
    tokio::spawn(connection);
    Some(sender)
}

/// Posts one signed interaction; true when it was answered with a reply (type 4) or a deferral
/// (type 5).
pub async fn send_signed(
    sender: &mut hyper::client::conn::http1::SendRequest<axum::body::Body>,
    authority: &str,
    body: Vec<u8>,
    signature: &str,
    timestamp: &str,
) -> bool {
    let Ok(request) = hyper::Request::post("/interactions")
        .header("host", authority)
        .header("content-type", "application/json")
        .header("x-signature-ed25519", signature)
        .header("x-signature-timestamp", timestamp)
        .body(axum::body::Body::from(body))
    else {
        return false;
    };
    match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status();
            let body =
                axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 20).await;
            status == 200
                && body.is_ok_and(|body| {
                    body.starts_with(b"{\"type\":4") || body.starts_with(b"{\"type\":5")
                })
        }
        Err(_) => false,
    }
}
