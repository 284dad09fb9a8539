//! Payload builders: users, members, messages and interactions as Discord sends them, for tests
//! to dispatch through the fake gateway or post to the HTTP endpoint.

use super::{CHANNEL_ID, GUILD_ID, TIMESTAMP};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

static BUILDER_IDS: AtomicU64 = AtomicU64::new(1_100_000_000_000_000_000);

/// A fresh snowflake for payload builders (unique within the test binary).
pub fn next_snowflake() -> u64 {
    BUILDER_IDS.fetch_add(1, Ordering::Relaxed)
}

/// A snowflake made at `unix_ms` (Unix milliseconds) with `low` in its 22 low bits, as Discord
/// makes interaction ids: what a replay check reads the id's time from.
pub fn snowflake_at(unix_ms: i64, low: u64) -> u64 {
    let since_epoch = u64::try_from(unix_ms - guidebot::store::DISCORD_EPOCH_MS)
        .expect("a time after Discord's epoch");
    (since_epoch << 22) | (low & 0x3F_FFFF)
}

/// A Discord user object.
pub fn user_json(id: u64, username: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": username,
        "discriminator": "0",
        "global_name": username,
        "avatar": null,
        "bot": bot,
        "public_flags": 0
    })
}

/// A guild member object wrapping `user`.
pub fn member_json(user: &Value) -> Value {
    json!({
        "user": user,
        "nick": null,
        "avatar": null,
        "roles": [],
        "joined_at": TIMESTAMP,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "permissions": "2248473465835073"
    })
}

/// A message object: `id` in `channel_id` by `author`, content/embeds/flags/components taken
/// from `body` (a message create/edit request body).
pub fn message_json(id: u64, channel_id: u64, author: Value, body: &Value) -> Value {
    json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": body.get("content").and_then(Value::as_str).unwrap_or(""),
        "timestamp": TIMESTAMP,
        "edited_timestamp": null,
        "tts": body.get("tts").and_then(Value::as_bool).unwrap_or(false),
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": body.get("embeds").filter(|e| e.is_array()).cloned().unwrap_or(json!([])),
        "components": body.get("components").filter(|e| e.is_array()).cloned().unwrap_or(json!([])),
        "pinned": false,
        "type": 0,
        "flags": body.get("flags").and_then(Value::as_u64).unwrap_or(0)
    })
}

/// The common part of an interaction in [`GUILD_ID`]/[`CHANNEL_ID`] from user `user_id`.
fn interaction_base(kind: u8, application_id: u64, user_id: u64) -> Value {
    let id = next_snowflake();
    let user = user_json(user_id, &format!("user{user_id}"), false);
    json!({
        "id": id.to_string(),
        "application_id": application_id.to_string(),
        "type": kind,
        "token": format!("fake-token-{id}"),
        "version": 1,
        "guild_id": GUILD_ID.to_string(),
        "channel_id": CHANNEL_ID.to_string(),
        "channel": {"id": CHANNEL_ID.to_string(), "type": 0, "name": "general", "guild_id": GUILD_ID.to_string()},
        "member": member_json(&user),
        "app_permissions": "2248473465835073",
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID.to_string()},
        "context": 0,
        "attachment_size_limit": 26_214_400
    })
}

/// Moves an interaction built by the builders here out of the guild into a DM with its user
/// (`user` instead of `member`, no `guild_id`).
pub fn in_dm(mut interaction: Value) -> Value {
    let obj = interaction.as_object_mut().expect("interaction object");
    if let Some(member) = obj.remove("member") {
        obj.insert("user".into(), member["user"].clone());
    }
    obj.remove("guild_id");
    obj.remove("guild_locale");
    obj.insert("context".into(), json!(1));
    obj.insert(
        "channel".into(),
        json!({"id": obj["channel_id"].clone(), "type": 1}),
    );
    interaction
}

/// A command option value for [`interaction_command`]: `type` from the JSON value (string 3,
/// integer 4, boolean 5, number 10).
pub fn opt(name: &str, value: impl Into<Value>) -> Value {
    let value = value.into();
    let kind = match &value {
        Value::String(_) => 3,
        Value::Bool(_) => 5,
        Value::Number(n) if n.is_i64() || n.is_u64() => 4,
        Value::Number(_) => 10,
        other => panic!("unsupported option value {other}"),
    };
    json!({"name": name, "type": kind, "value": value})
}

/// A focused (being typed) string option for [`interaction_autocomplete`].
pub fn opt_focused(name: &str, partial: &str) -> Value {
    json!({"name": name, "type": 3, "value": partial, "focused": true})
}

/// An INTERACTION_CREATE payload for slash command `/name` with `options` (a JSON array of
/// [`opt`] values) from `user_id`, in [`GUILD_ID`]/[`CHANNEL_ID`]. The token is in `["token"]`.
pub fn interaction_command(application_id: u64, name: &str, options: Value, user_id: u64) -> Value {
    let mut i = interaction_base(2, application_id, user_id);
    i["data"] = json!({
        "id": next_snowflake().to_string(),
        "name": name,
        "type": 1,
        "options": options,
        "guild_id": GUILD_ID.to_string()
    });
    i
}

/// `interaction` as sent from inside thread `thread` (a public thread, type 11, under
/// [`CHANNEL_ID`]): its `channel_id` and the `channel` object Discord includes.
pub fn in_thread(mut interaction: Value, thread: u64, name: &str) -> Value {
    interaction["channel_id"] = json!(thread.to_string());
    interaction["channel"] = json!({
        "id": thread.to_string(),
        "type": 11,
        "name": name,
        "guild_id": GUILD_ID.to_string(),
        "parent_id": CHANNEL_ID.to_string()
    });
    interaction
}

/// An autocomplete interaction (type 4) for `/name`; `options` should contain one
/// [`opt_focused`] value.
pub fn interaction_autocomplete(
    application_id: u64,
    name: &str,
    options: Value,
    user_id: u64,
) -> Value {
    let mut i = interaction_command(application_id, name, options, user_id);
    i["type"] = json!(4);
    i
}

/// A button press (type 3, component type 2) on `custom_id`, attached to a message the bot sent
/// (`message_id`, with a row holding that button; its author is a bot user whose id is the
/// application id, as for bots created after 2019).
pub fn interaction_component(
    application_id: u64,
    custom_id: &str,
    user_id: u64,
    message_id: u64,
) -> Value {
    let mut i = interaction_base(3, application_id, user_id);
    let bot = user_json(application_id, "guidebot", true);
    let mut message = message_json(
        message_id,
        CHANNEL_ID,
        bot,
        &json!({
            "content": "an earlier answer",
            "components": [{"type": 1, "components": [{"type": 2, "style": 2, "label": "button", "custom_id": custom_id}]}]
        }),
    );
    message["application_id"] = json!(application_id.to_string());
    i["message"] = message;
    i["data"] = json!({"custom_id": custom_id, "component_type": 2});
    i
}

/// A PING interaction (type 1), as Discord sends to an HTTP interactions endpoint.
pub fn ping_interaction(application_id: u64) -> Value {
    let id = next_snowflake();
    json!({
        "id": id.to_string(),
        "application_id": application_id.to_string(),
        "type": 1,
        "token": format!("fake-token-{id}"),
        "version": 1,
        "user": null,
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": 26_214_400
    })
}

/// A MESSAGE_CREATE payload: `content` by `author` (see [`user_json`]) in
/// [`GUILD_ID`]/[`CHANNEL_ID`], mentioning `mentions` (user objects; to mention the bot, include
/// `<@BOT_ID>` in `content` and the bot's [`user_json`] here).
pub fn message_create(content: &str, author: Value, mentions: &[Value]) -> Value {
    let mut m = message_json(
        next_snowflake(),
        CHANNEL_ID,
        author.clone(),
        &json!({"content": content}),
    );
    m["guild_id"] = json!(GUILD_ID.to_string());
    let mut member = member_json(&author);
    member.as_object_mut().unwrap().remove("user");
    m["member"] = member;
    m["mentions"] = Value::Array(mentions.to_vec());
    m
}
