//! The fake Discord's REST side: the routes it knows (OpenAPI path templates), request
//! recording and validation against Discord's spec, programmed failures, and normal answers.

use super::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// REST routes the fake knows, as (method, OpenAPI path template).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/gateway"),
    ("GET", "/gateway/bot"),
    ("GET", "/channels/{channel_id}"),
    ("GET", "/users/@me"),
    ("GET", "/oauth2/applications/@me"),
    ("GET", "/applications/@me"),
    ("GET", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/commands"),
    ("POST", "/applications/{application_id}/commands"),
    (
        "GET",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    ),
    (
        "PUT",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    ),
    (
        "POST",
        "/applications/{application_id}/guilds/{guild_id}/commands",
    ),
    (
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
    ),
    (
        "GET",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    ),
    (
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    ),
    (
        "DELETE",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
    ),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"),
    (
        "GET",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    ),
    (
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    ),
    (
        "DELETE",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    ),
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    (
        "POST",
        "/channels/{channel_id}/messages/{message_id}/threads",
    ),
    ("POST", "/channels/{channel_id}/typing"),
    (
        "PUT",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
    ),
];

/// Matches `path` (after `/api/v10`) against the known routes; literal segments win over params.
pub(super) fn match_route(
    method: &str,
    path: &str,
) -> Option<(&'static str, HashMap<String, String>)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut best: Option<(usize, &'static str, HashMap<String, String>)> = None;
    for &(m, template) in ROUTES {
        if m != method {
            continue;
        }
        let tsegs: Vec<&str> = template.trim_matches('/').split('/').collect();
        if tsegs.len() != segs.len() {
            continue;
        }
        let mut params = HashMap::new();
        let mut literals = 0;
        let ok = tsegs.iter().zip(&segs).all(|(t, s)| {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                params.insert(name.to_string(), (*s).to_string());
                !s.is_empty()
            } else {
                literals += 1;
                t == s
            }
        });
        if ok && best.as_ref().is_none_or(|(l, _, _)| literals > *l) {
            best = Some((literals, template, params));
        }
    }
    best.map(|(_, t, p)| (t, p))
}

pub(super) fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Pulls the `payload_json` part out of a multipart body (what serenity sends with files).
fn multipart_payload(content_type: &str, raw: &[u8]) -> Option<Value> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let text = String::from_utf8_lossy(raw);
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str())
        .filter(|part| part.contains("name=\"payload_json\""))
        .find_map(|part| {
            let body = part.split_once("\r\n\r\n")?.1;
            serde_json::from_str(body.trim_end_matches("\r\n")).ok()
        })
}

pub(super) async fn rest(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let json_body: Option<Value> = if content_type.starts_with("multipart/") {
        multipart_payload(&content_type, &body)
    } else if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let matched = path
        .strip_prefix("/api/v10")
        .and_then(|p| match_route(method.as_str(), p));
    let (route, params) = match matched {
        Some((r, p)) => (Some(r), p),
        None => (None, HashMap::new()),
    };

    // Compiling a validator the first time takes a moment: keep it off the async workers.
    let (spec_checked, spec_errors) = {
        let (method, json_body, non_empty) = (method.clone(), json_body.clone(), !body.is_empty());
        tokio::task::spawn_blocking(move || {
            check_body(method.as_str(), route, json_body.as_ref(), non_empty)
        })
        .await
        .expect("spec validation task")
    };

    let failure = route.and_then(|route| {
        let mut failures = shared.failures.lock().unwrap();
        let f = failures
            .iter_mut()
            .find(|f| f.times > 0 && f.method == method.as_str() && f.route == route)?;
        f.times -= 1;
        Some((f.status, f.body.clone()))
    });

    let response = match (failure, route) {
        (Some((status, body)), _) => {
            let mut resp = json_response(status, body);
            if status == 429 {
                let h = resp.headers_mut();
                h.insert("retry-after", "1".parse().unwrap());
                h.insert("x-ratelimit-limit", "5".parse().unwrap());
                h.insert("x-ratelimit-remaining", "0".parse().unwrap());
                h.insert("x-ratelimit-reset-after", "0.050".parse().unwrap());
                h.insert("x-ratelimit-bucket", "fake".parse().unwrap());
                h.insert("x-ratelimit-scope", "user".parse().unwrap());
            }
            resp
        }
        (None, Some(route)) => answer(&shared, method.as_str(), route, &params, json_body.as_ref()),
        (None, None) => json_response(404, json!({"message": "404: Not Found", "code": 0})),
    };

    // Keep the response's JSON too (tests read ids the fake gave, e.g. of a posted message).
    let (parts, response_body) = response.into_parts();
    let response_bytes = axum::body::to_bytes(response_body, usize::MAX)
        .await
        .unwrap_or_default();
    let response_json: Option<Value> = serde_json::from_slice(&response_bytes).ok();
    let response = Response::from_parts(parts, axum::body::Body::from(response_bytes));

    let record = RecordedRequest {
        response: response_json,
        index: 0,
        method: method.as_str().to_string(),
        path,
        route,
        params,
        query: uri.query().map(str::to_string),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: json_body,
        raw_body: body,
        status: response.status().as_u16(),
        spec_checked,
        spec_errors,
        received_at: std::time::Instant::now(),
    };
    {
        let mut log = shared.requests.lock().unwrap();
        let index = log.len();
        log.push(RecordedRequest { index, ..record });
    }
    shared.bump();
    response
}

/// Validates a request body against the spec: (whether the spec describes a JSON body, errors).
fn check_body(
    method: &str,
    route: Option<&str>,
    json_body: Option<&Value>,
    non_empty: bool,
) -> (bool, Vec<String>) {
    let Some(route) = route else {
        return (false, Vec::new());
    };
    if discord_spec::request_body_validator(method, route).is_none() {
        return (false, Vec::new());
    }
    let errors = match json_body {
        Some(b) => discord_spec::validate_request_body(method, route, b).unwrap_or_default(),
        None if non_empty => vec![format!("{method} {route}: body is not JSON")],
        None => vec![format!("{method} {route}: missing JSON body")],
    };
    (true, errors)
}

/// The normal (non-failing) answer of a known route.
fn answer(
    shared: &Shared,
    method: &str,
    route: &'static str,
    params: &HashMap<String, String>,
    body: Option<&Value>,
) -> Response {
    let cfg = &shared.cfg;
    let empty = json!({});
    let body = body.unwrap_or(&empty);
    let channel_for_token = |token: &str| {
        shared
            .token_channels
            .lock()
            .unwrap()
            .get(token)
            .copied()
            .unwrap_or(CHANNEL_ID)
    };
    match (method, route) {
        ("GET", "/gateway") => json_response(200, json!({"url": shared.ws_url()})),
        ("GET", "/gateway/bot") => json_response(
            200,
            json!({
                "url": shared.ws_url(),
                "shards": cfg.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
            }),
        ),
        ("GET", "/users/@me") => json_response(200, shared.bot_user()),
        ("GET", "/oauth2/applications/@me") | ("GET", "/applications/@me") => {
            json_response(200, application_json(cfg))
        }
        ("GET", _) if route.ends_with("/commands") => json_response(200, json!([])),
        ("PUT", _) | ("POST", _) if route.ends_with("/commands") => {
            let guild_id = params.get("guild_id").cloned();
            let one = |c: &Value| command_json(shared, c, guild_id.as_deref());
            match body {
                Value::Array(cmds) => {
                    json_response(200, Value::Array(cmds.iter().map(one).collect()))
                }
                other => json_response(if method == "POST" { 201 } else { 200 }, one(other)),
            }
        }
        ("POST", "/interactions/{interaction_id}/{interaction_token}/callback") => {
            StatusCode::NO_CONTENT.into_response()
        }
        (_, r) if r.starts_with("/webhooks/") => {
            if method == "DELETE" {
                return StatusCode::NO_CONTENT.into_response();
            }
            let token = params
                .get("webhook_token")
                .map(String::as_str)
                .unwrap_or("");
            let channel = channel_for_token(token);
            let id = params
                .get("message_id")
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| shared.snowflake());
            let mut msg = message_json(id, channel, shared.bot_user(), body);
            msg["webhook_id"] = json!(cfg.application_id.to_string());
            msg["application_id"] = json!(cfg.application_id.to_string());
            json_response(200, msg)
        }
        ("POST", "/channels/{channel_id}/messages")
        | ("PATCH", "/channels/{channel_id}/messages/{message_id}") => {
            let channel = params["channel_id"].parse().unwrap_or(CHANNEL_ID);
            let id = params
                .get("message_id")
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| shared.snowflake());
            json_response(200, message_json(id, channel, shared.bot_user(), body))
        }
        ("POST", "/channels/{channel_id}/messages/{message_id}/threads") => {
            let parent: u64 = params["channel_id"].parse().unwrap_or(CHANNEL_ID);
            // A thread started from a message has the message's id; like Discord, the fake then
            // describes it on `GET /channels/{id}` (owned by the bot that opened it).
            let id = params["message_id"].clone();
            let thread = json!({
                "id": id,
                "type": 11,
                "guild_id": GUILD_ID.to_string(),
                "parent_id": parent.to_string(),
                "owner_id": cfg.bot_user_id.to_string(),
                "name": body.get("name").cloned().unwrap_or(json!("thread")),
                "last_message_id": null,
                "rate_limit_per_user": body.get("rate_limit_per_user").cloned().unwrap_or(json!(0)),
                "message_count": 0,
                "member_count": 1,
                "flags": 0,
                "thread_metadata": {
                    "archived": false,
                    "auto_archive_duration": body.get("auto_archive_duration").cloned().unwrap_or(json!(1440)),
                    "archive_timestamp": TIMESTAMP,
                    "locked": false
                }
            });
            if let Ok(key) = id.parse::<u64>() {
                shared.channels.lock().unwrap().insert(key, thread.clone());
            }
            json_response(201, thread)
        }
        ("GET", "/channels/{channel_id}") => {
            let id: u64 = params["channel_id"].parse().unwrap_or(0);
            match shared.channels.lock().unwrap().get(&id) {
                Some(channel) => json_response(200, channel.clone()),
                None => json_response(404, json!({"message": "Unknown Channel", "code": 10003})),
            }
        }
        ("POST", "/channels/{channel_id}/typing") => StatusCode::NO_CONTENT.into_response(),
        ("PUT", _) if route.contains("/reactions/") => StatusCode::NO_CONTENT.into_response(),
        _ => json_response(404, json!({"message": "404: Not Found", "code": 0})),
    }
}

fn application_json(cfg: &FakeConfig) -> Value {
    json!({
        "id": cfg.application_id.to_string(),
        "name": cfg.bot_username,
        "icon": null,
        "description": "fake application",
        "bot_public": true,
        "bot_require_code_grant": false,
        "verify_key": "0".repeat(64),
        "flags": 0,
        "owner": user_json(700_000_000_000_000_001, "owner", false),
        "team": null,
        "bot": user_json(cfg.bot_user_id, &cfg.bot_username, true),
        "summary": "",
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": null
    })
}

/// The command object Discord answers for a registered command body `c`.
fn command_json(shared: &Shared, c: &Value, guild_id: Option<&str>) -> Value {
    let mut out = c.clone();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    obj.insert("id".into(), json!(shared.snowflake().to_string()));
    obj.insert(
        "application_id".into(),
        json!(shared.cfg.application_id.to_string()),
    );
    obj.insert("version".into(), json!(shared.snowflake().to_string()));
    obj.entry("type").or_insert(json!(1));
    obj.entry("description").or_insert(json!(""));
    obj.entry("default_member_permissions")
        .or_insert(Value::Null);
    obj.entry("nsfw").or_insert(json!(false));
    if let Some(g) = guild_id {
        obj.insert("guild_id".into(), json!(g));
    }
    if obj.get("options").is_some_and(Value::is_null) {
        obj.insert("options".into(), json!([]));
    }
    out
}
