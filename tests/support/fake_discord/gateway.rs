//! The fake Discord's gateway side: the websocket upgrade at `/gw` and one session per
//! connection (HELLO, IDENTIFY, READY, heartbeats, dispatches pushed by the test).

use super::*;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

pub(super) async fn gateway_upgrade(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
) -> Response {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return (StatusCode::BAD_REQUEST, "expected a websocket upgrade").into_response();
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        run_session(shared, ws).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", accept)
        .body(Body::empty())
        .unwrap()
}

async fn run_session<S>(shared: Arc<Shared>, ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": shared.cfg.heartbeat_interval_ms}, "s": null, "t": null});
    if sink.send(WsMessage::Text(hello.to_string())).await.is_err() {
        return;
    }
    shared.sessions.lock().unwrap().insert(
        conn,
        Session {
            shard: [0, 1],
            ready: false,
            seq: 0,
            tx,
        },
    );
    shared.bump();
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(frame) = out else { break };
                if sink.send(WsMessage::Text(frame)).await.is_err() {
                    break;
                }
            }
            incoming = stream.next() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(WsMessage::Ping(p))) => {
                        let _ = sink.send(WsMessage::Pong(p)).await;
                        continue;
                    }
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                shared.gateway_log.lock().unwrap().push(frame.clone());
                match frame.get("op").and_then(Value::as_u64) {
                    Some(1) => {
                        let _ = sink.send(WsMessage::Text(json!({"op": 11, "d": null, "s": null, "t": null}).to_string())).await;
                    }
                    Some(2) => {
                        let d = frame["d"].clone();
                        let shard = d["shard"].as_array().and_then(|a| Some([a.first()?.as_u64()?, a.get(1)?.as_u64()?]));
                        shared.identifies.lock().unwrap().push(RecordedIdentify {
                            token: d["token"].as_str().unwrap_or_default().to_string(),
                            intents: d["intents"].as_u64().unwrap_or_default(),
                            shard,
                            raw: d,
                        });
                        let shard = shard.unwrap_or([0, 1]);
                        let ready = json!({
                            "op": 0, "t": "READY", "s": 1,
                            "d": {
                                "v": 10,
                                "user": shared.bot_user(),
                                "guilds": [],
                                "session_id": format!("fake-session-{conn}"),
                                "resume_gateway_url": shared.ws_url(),
                                "shard": shard,
                                "application": {"id": shared.cfg.application_id.to_string(), "flags": 0}
                            }
                        });
                        if sink.send(WsMessage::Text(ready.to_string())).await.is_err() {
                            break;
                        }
                        if let Some(s) = shared.sessions.lock().unwrap().get_mut(&conn) {
                            s.shard = shard;
                            s.ready = true;
                            s.seq = 1;
                        }
                    }
                    Some(6) => {
                        // RESUME: accept it and carry on with the same numbering.
                        let resumed = json!({"op": 0, "t": "RESUMED", "s": frame["d"]["seq"].as_u64().unwrap_or(0) + 1, "d": {}});
                        let _ = sink.send(WsMessage::Text(resumed.to_string())).await;
                        if let Some(s) = shared.sessions.lock().unwrap().get_mut(&conn) {
                            s.ready = true;
                            s.seq = frame["d"]["seq"].as_u64().unwrap_or(0) + 1;
                        }
                    }
                    _ => {}
                }
                shared.bump();
            }
        }
    }
    shared.sessions.lock().unwrap().remove(&conn);
    shared.bump();
}
