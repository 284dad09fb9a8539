//! Proof that the fake Discord (tests/support) works with the real serenity 0.12.5 client:
//! gateway handshake, command registration, interactions, messages, REST shapes, failures,
//! sharding, spec validation, payload builders and the interactions-endpoint verifier.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use serenity::all::{
    ApplicationId, ChannelId, Client, Command, CommandInteraction, CommandOptionType, Context,
    CreateAllowedMentions, CreateCommand, CreateCommandOption, CreateEmbed,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, CreateThread, EditInteractionResponse, EventHandler, GatewayIntents,
    Interaction, Message, Ready,
};
use support::discord_spec::validate_request_body;
use support::fake_discord::{self as fd, FakeConfig, FakeDiscord, DEFAULT_TIMEOUT};
use tokio::sync::mpsc;

const TOKEN: &str = "fake-bot-token";
const CALLBACK: &str = "/interactions/{interaction_id}/{interaction_token}/callback";
const GLOBAL_COMMANDS: &str = "/applications/{application_id}/commands";
const CHANNEL_MESSAGES: &str = "/channels/{channel_id}/messages";

/// A tiny test-only handler: registers `/ask` on READY, answers commands with content + embed,
/// answers human messages with a channel message. Reports every REST outcome on `events`.
struct ProbeHandler {
    events: mpsc::UnboundedSender<String>,
}

#[serenity::async_trait]
impl EventHandler for ProbeHandler {
    async fn ready(&self, ctx: Context, _ready: Ready) {
        let ask = CreateCommand::new("ask")
            .description("Ask the career guides a question")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "question", "Your question")
                    .required(true)
                    .max_length(500),
            );
        let outcome = Command::set_global_commands(&ctx.http, vec![ask]).await;
        let _ = self
            .events
            .send(format!("registered: {:?}", outcome.map(|c| c.len())));
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        if let Interaction::Command(cmd) = interaction {
            let response = CreateInteractionResponseMessage::new()
                .content(format!("You asked /{}", cmd.data.name))
                .embed(
                    CreateEmbed::new()
                        .title("Answer")
                        .description("From the guide, section 2."),
                )
                .allowed_mentions(CreateAllowedMentions::new());
            let outcome = cmd
                .create_response(&ctx.http, CreateInteractionResponse::Message(response))
                .await;
            let _ = self.events.send(format!("callback: {:?}", outcome.is_ok()));
        }
    }

    async fn message(&self, ctx: Context, msg: Message) {
        if msg.author.bot {
            return;
        }
        let reply = CreateMessage::new()
            .content(format!("echo: {}", msg.content))
            .allowed_mentions(CreateAllowedMentions::new());
        let outcome = msg.channel_id.send_message(&ctx.http, reply).await;
        let _ = self.events.send(format!("message: {:?}", outcome.is_ok()));
    }
}

async fn start_client(fake: &FakeDiscord) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = serenity::client::ClientBuilder::new_with_http(
        fake.http(TOKEN),
        GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT,
    )
    .event_handler(ProbeHandler { events: tx })
    .await
    .expect("build client");
    (client, rx)
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(DEFAULT_TIMEOUT, rx.recv())
        .await
        .expect("handler event within the timeout")
        .expect("handler channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serenity_client_end_to_end_against_fake() {
    let fake = FakeDiscord::start().await;
    let (mut client, mut events) = start_client(&fake).await;
    let shard_manager = client.shard_manager.clone();
    let runner = tokio::spawn(async move { client.start().await });

    // Gateway handshake: IDENTIFY carries the token, intents and shard.
    let identify = fake.wait_for_identify(1, DEFAULT_TIMEOUT).await;
    // serenity sends the token with its "Bot " prefix on the gateway too.
    assert_eq!(identify.token, format!("Bot {TOKEN}"));
    assert_eq!(identify.shard, Some([0, 1]));
    let intents = (GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT).bits();
    assert_eq!(identify.intents, intents);
    fake.wait_for_ready(1, DEFAULT_TIMEOUT).await;

    // Command registration on READY: a bulk PUT, spec-valid, answered with ids.
    let put = fake
        .wait_for_route("PUT", GLOBAL_COMMANDS, DEFAULT_TIMEOUT)
        .await;
    assert_eq!(
        put.param("application_id"),
        fake.application_id().to_string()
    );
    assert_eq!(put.header("authorization"), Some(&*format!("Bot {TOKEN}")));
    assert!(
        put.spec_checked && put.spec_errors.is_empty(),
        "{:?}",
        put.spec_errors
    );
    assert_eq!(put.json()[0]["name"], "ask");
    assert_eq!(put.json()[0]["options"][0]["max_length"], 500);
    assert_eq!(next_event(&mut events).await, "registered: Ok(1)");

    // A slash command over the gateway -> type 4 callback with content, embed, empty parse.
    let interaction = fd::interaction_command(
        fake.application_id(),
        "ask",
        json!([fd::opt("question", "How do I negotiate?")]),
        42,
    );
    let token = interaction["token"].as_str().unwrap().to_string();
    fake.dispatch("INTERACTION_CREATE", interaction).await;
    let callback = fake
        .wait_for_request(
            |r| r.is("POST", CALLBACK) && r.param("interaction_token") == token,
            DEFAULT_TIMEOUT,
        )
        .await;
    assert_eq!(callback.status, 204);
    assert!(
        callback.spec_checked && callback.spec_errors.is_empty(),
        "{:?}",
        callback.spec_errors
    );
    let body = callback.json();
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["content"], "You asked /ask");
    assert_eq!(body["data"]["embeds"][0]["title"], "Answer");
    assert_eq!(body["data"]["allowed_mentions"]["parse"], json!([]));
    assert_eq!(next_event(&mut events).await, "callback: true");

    // A human message -> a channel message in the same channel.
    let author = fd::user_json(43, "human", false);
    fake.dispatch(
        "MESSAGE_CREATE",
        fd::message_create("hello @everyone", author, &[]),
    )
    .await;
    let sent = fake
        .wait_for_route("POST", CHANNEL_MESSAGES, DEFAULT_TIMEOUT)
        .await;
    assert_eq!(sent.param("channel_id"), fd::CHANNEL_ID.to_string());
    assert_eq!(sent.json()["content"], "echo: hello @everyone");
    assert_eq!(sent.json()["allowed_mentions"]["parse"], json!([]));
    assert!(
        sent.spec_checked && sent.spec_errors.is_empty(),
        "{:?}",
        sent.spec_errors
    );
    assert_eq!(next_event(&mut events).await, "message: true");

    // A message from a bot is ignored: nothing more is sent. Prove ordering with a later human one.
    let bot = fd::user_json(44, "otherbot", true);
    fake.dispatch("MESSAGE_CREATE", fd::message_create("ignore me", bot, &[]))
        .await;
    let human = fd::user_json(45, "human2", false);
    fake.dispatch("MESSAGE_CREATE", fd::message_create("second", human, &[]))
        .await;
    let sent = fake
        .wait_for_requests(|r| r.is("POST", CHANNEL_MESSAGES), 2, DEFAULT_TIMEOUT)
        .await;
    assert_eq!(sent[1].json()["content"], "echo: second");
    assert!(fake.requests().iter().all(|r| r
        .body
        .as_ref()
        .is_none_or(|b| b["content"] != "echo: ignore me")));

    fake.assert_all_valid();
    assert!(fake.unknown_requests().is_empty());

    // Clean shutdown: the shards close their sockets and `start` returns.
    shard_manager.shutdown_all().await;
    fake.wait_for_gateway_closed(DEFAULT_TIMEOUT).await;
    let result = tokio::time::timeout(DEFAULT_TIMEOUT, runner)
        .await
        .expect("client stops after shutdown_all")
        .expect("client task did not panic");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_answers_deserialize_in_serenity_and_failures_are_programmable() {
    let fake = FakeDiscord::start().await;
    let http = fake.http(TOKEN);
    http.set_application_id(ApplicationId::new(fake.application_id()));

    let me = http.get_current_user().await.expect("GET /users/@me");
    assert_eq!(me.id.get(), fake.bot_user_id());
    let app = http
        .get_current_application_info()
        .await
        .expect("GET /oauth2/applications/@me");
    assert_eq!(app.id.get(), fake.application_id());
    let gw = http.get_gateway().await.expect("GET /gateway");
    assert_eq!(gw.url, fake.gateway_url());
    let bot_gw = http.get_bot_gateway().await.expect("GET /gateway/bot");
    assert_eq!(bot_gw.shards, 1);

    // Deferred answer, then edits and a follow-up on the interaction's webhook.
    let raw = fd::interaction_command(
        fake.application_id(),
        "ask",
        json!([fd::opt("question", "q")]),
        7,
    );
    let cmd: CommandInteraction = serde_json::from_value(raw).expect("command interaction");
    cmd.defer(&http).await.expect("defer");
    let edited = cmd
        .edit_response(
            &http,
            EditInteractionResponse::new()
                .content("partial answer")
                .allowed_mentions(CreateAllowedMentions::new()),
        )
        .await
        .expect("edit original");
    assert_eq!(edited.content, "partial answer");
    let follow = cmd
        .create_followup(
            &http,
            CreateInteractionResponseFollowup::new()
                .content("more")
                .ephemeral(true),
        )
        .await
        .expect("follow-up");
    assert_eq!(follow.content, "more");

    let defer = fake.wait_for_route("POST", CALLBACK, DEFAULT_TIMEOUT).await;
    assert_eq!(defer.json()["type"], 5);
    let edit = fake
        .wait_for_route(
            "PATCH",
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
            DEFAULT_TIMEOUT,
        )
        .await;
    assert_eq!(edit.param("webhook_token"), cmd.token);
    let post = fake
        .wait_for_route(
            "POST",
            "/webhooks/{webhook_id}/{webhook_token}",
            DEFAULT_TIMEOUT,
        )
        .await;
    assert_eq!(post.json()["flags"], 64);

    // Typing, a message, a thread from it.
    let channel = ChannelId::new(fd::CHANNEL_ID);
    channel.broadcast_typing(&http).await.expect("typing");
    let msg = channel
        .send_message(
            &http,
            CreateMessage::new()
                .content("hi")
                .allowed_mentions(CreateAllowedMentions::new()),
        )
        .await
        .expect("send message");
    let thread = channel
        .create_thread_from_message(&http, msg.id, CreateThread::new("Answer thread"))
        .await
        .expect("thread from message");
    assert_eq!(thread.name, "Answer thread");

    // Programmed failures reach serenity as errors, then the route works again.
    fake.fail_next_500("POST", CHANNEL_MESSAGES, 1);
    assert!(channel.say(&http, "boom").await.is_err());
    fake.fail_next_429("POST", CHANNEL_MESSAGES, 1);
    assert!(channel.say(&http, "slow down").await.is_err());
    assert!(channel.say(&http, "fine").await.is_ok());
    let statuses: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.is("POST", CHANNEL_MESSAGES))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [200, 500, 429, 200]);

    // Unknown routes are recorded, answered 404 and flagged.
    assert!(http
        .get_guild(serenity::all::GuildId::new(1))
        .await
        .is_err());
    assert_eq!(fake.unknown_requests().len(), 1);
    let flagged = std::panic::catch_unwind(|| fake.assert_all_valid());
    assert!(flagged.is_err(), "unknown route must fail assert_all_valid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_identify_separately_and_dispatches_route_by_guild() {
    let fake = FakeDiscord::start_with(FakeConfig {
        recommended_shards: 2,
        ..FakeConfig::default()
    })
    .await;
    let (mut client, mut events) = start_client(&fake).await;
    let shard_manager = client.shard_manager.clone();
    // serenity waits 5 s between shard IDENTIFYs (its shard queuer), so this test takes ~5 s.
    let runner = tokio::spawn(async move { client.start_autosharded().await });
    fake.wait_for_ready(2, Duration::from_secs(20)).await;
    let mut shards: Vec<_> = fake.identifies().iter().map(|i| i.shard.unwrap()).collect();
    shards.sort();
    assert_eq!(shards, [[0, 2], [1, 2]]);
    assert_eq!(next_event(&mut events).await, "registered: Ok(1)");

    fake.dispatch(
        "INTERACTION_CREATE",
        fd::interaction_command(fake.application_id(), "ask", json!([]), 9),
    )
    .await;
    fake.wait_for_route("POST", CALLBACK, DEFAULT_TIMEOUT).await;
    shard_manager.shutdown_all().await;
    fake.wait_for_gateway_closed(DEFAULT_TIMEOUT).await;
    let _ = tokio::time::timeout(DEFAULT_TIMEOUT, runner)
        .await
        .expect("client stops");
}

#[test]
fn spec_validator_rejects_bad_payloads_and_accepts_good_ones() {
    let ok = |m: &str, p: &str, b: Value| {
        let errors = validate_request_body(m, p, &b).expect("spec has a body schema");
        assert!(errors.is_empty(), "{m} {p} should be valid: {errors:?}");
    };
    let bad = |m: &str, p: &str, b: Value, needle: &str| {
        let errors = validate_request_body(m, p, &b).expect("spec has a body schema");
        assert!(!errors.is_empty(), "{m} {p} should be rejected: {b}");
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "expected {needle:?} in {errors:?}"
        );
    };
    let message = json!({"type": 4, "data": {"content": "hi", "embeds": [{"title": "ok"}], "allowed_mentions": {"parse": []}}});
    ok("POST", CALLBACK, message);
    ok("POST", CALLBACK, json!({"type": 1}));
    ok("POST", CALLBACK, json!({"type": 5, "data": {"flags": 64}}));
    ok(
        "POST",
        CALLBACK,
        json!({"type": 8, "data": {"choices": [{"name": "Acme", "value": "acme"}]}}),
    );
    bad("POST", CALLBACK, json!({"type": 99}), "type");
    bad(
        "POST",
        CALLBACK,
        json!({"type": 4, "data": {"embeds": [{"title": "t".repeat(300)}]}}),
        "/data/embeds/0/title",
    );
    bad(
        "POST",
        CALLBACK,
        json!({"type": 4, "data": {"content": "x".repeat(2001)}}),
        "/data/content",
    );
    let too_many: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("c{i}"), "value": "v"}))
        .collect();
    bad(
        "POST",
        CALLBACK,
        json!({"type": 8, "data": {"choices": too_many}}),
        "/data/choices",
    );

    ok(
        "PUT",
        GLOBAL_COMMANDS,
        json!([{"name": "ask", "description": "Ask", "type": 1, "options": [{"type": 3, "name": "question", "description": "q", "required": true, "max_length": 500}]}]),
    );
    bad(
        "PUT",
        GLOBAL_COMMANDS,
        json!([{"name": "x".repeat(33), "description": "d"}]),
        "/0/name",
    );
    bad(
        "PUT",
        GLOBAL_COMMANDS,
        json!([{"name": "ask", "description": "d".repeat(101)}]),
        "/0/description",
    );

    let edit = "/webhooks/{webhook_id}/{webhook_token}/messages/@original";
    ok(
        "PATCH",
        edit,
        json!({"content": "x", "allowed_mentions": {"parse": []}}),
    );
    bad(
        "PATCH",
        edit,
        json!({"embeds": [{"description": "d".repeat(4097)}]}),
        "/embeds/0/description",
    );
    bad(
        "PATCH",
        edit,
        json!({"allowed_mentions": {"parse": ["nobody"]}}),
        "/allowed_mentions/parse/0",
    );
    let fields: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("f{i}"), "value": "v"}))
        .collect();
    bad(
        "POST",
        CHANNEL_MESSAGES,
        json!({"embeds": [{"fields": fields}]}),
        "/embeds/0/fields",
    );
    bad(
        "POST",
        CHANNEL_MESSAGES,
        json!({"embeds": [{"fields": [{"name": "n", "value": "v".repeat(1025)}]}]}),
        "/embeds/0/fields/0/value",
    );

    // Discord's limit on all embeds of a message together (6000 chars) is not in the schema
    // language; the validator adds it.
    let big = |n: usize| json!({"description": "d".repeat(n)});
    ok(
        "POST",
        CHANNEL_MESSAGES,
        json!({"embeds": [big(3000), big(3000)]}),
    );
    bad(
        "POST",
        CHANNEL_MESSAGES,
        json!({"embeds": [big(4000), big(2001)]}),
        "6000",
    );
    bad(
        "POST",
        CALLBACK,
        json!({"type": 4, "data": {"embeds": [big(4000), big(2001)]}}),
        "6000",
    );

    // Operations without a JSON body are not "valid", just unchecked.
    assert!(validate_request_body("POST", "/channels/{channel_id}/typing", &json!({})).is_none());
}

#[test]
fn payload_builders_deserialize_into_serenity_models() {
    let app = 800_000_000_000_000_002;
    let cmd: Interaction = serde_json::from_value(fd::interaction_command(
        app,
        "ask",
        json!([fd::opt("question", "q"), fd::opt("private", true)]),
        5,
    ))
    .expect("command");
    let Interaction::Command(cmd) = cmd else {
        panic!("not a command")
    };
    assert_eq!(cmd.user.id.get(), 5);
    assert_eq!(cmd.guild_id.map(|g| g.get()), Some(fd::GUILD_ID));
    assert_eq!(cmd.data.options.len(), 2);

    let dm: Interaction = serde_json::from_value(fd::in_dm(fd::interaction_command(
        app,
        "about",
        json!([]),
        6,
    )))
    .expect("dm command");
    let Interaction::Command(dm) = dm else {
        panic!("not a command")
    };
    assert!(dm.guild_id.is_none());
    assert_eq!(dm.user.id.get(), 6);

    let auto: Interaction = serde_json::from_value(fd::interaction_autocomplete(
        app,
        "comp",
        json!([fd::opt_focused("company", "Ac")]),
        5,
    ))
    .expect("autocomplete");
    let Interaction::Autocomplete(auto) = auto else {
        panic!("not autocomplete")
    };
    assert_eq!(auto.data.autocomplete().map(|o| o.value), Some("Ac"));

    let button: Interaction =
        serde_json::from_value(fd::interaction_component(app, "feedback:up", 5, 1234))
            .expect("component");
    let Interaction::Component(button) = button else {
        panic!("not a component")
    };
    assert_eq!(button.data.custom_id, "feedback:up");
    assert_eq!(button.message.id.get(), 1234);

    let ping: Interaction = serde_json::from_value(fd::ping_interaction(app)).expect("ping");
    assert!(matches!(ping, Interaction::Ping(_)));

    let bot = fd::user_json(800_000_000_000_000_001, "guidebot", true);
    let author = fd::user_json(5, "human", false);
    let msg: Message = serde_json::from_value(fd::message_create(
        "<@800000000000000001> what is a staff engineer?",
        author,
        &[bot],
    ))
    .expect("message");
    assert_eq!(msg.mentions.len(), 1);
    assert_eq!(msg.guild_id.map(|g| g.get()), Some(fd::GUILD_ID));
    assert!(!msg.author.bot);
}

#[test]
fn interactions_endpoint_verifier_accepts_a_signed_ping_and_rejects_tampering() {
    use ed25519_dalek::{Signer, SigningKey};
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let verifier =
        serenity::interactions_endpoint::Verifier::try_new(key.verifying_key().to_bytes())
            .expect("valid public key");
    let body = fd::ping_interaction(800_000_000_000_000_002).to_string();
    let timestamp = "1767225600";
    let signed = [timestamp.as_bytes(), body.as_bytes()].concat();
    let signature = hex::encode(key.sign(&signed).to_bytes());
    assert!(verifier
        .verify(&signature, timestamp, body.as_bytes())
        .is_ok());
    assert!(verifier
        .verify(&signature, "1767225601", body.as_bytes())
        .is_err());
    assert!(verifier
        .verify(&signature, timestamp, b"{\"type\":2}")
        .is_err());
    let other = SigningKey::from_bytes(&[8u8; 32]);
    let wrong = hex::encode(other.sign(&signed).to_bytes());
    assert!(verifier.verify(&wrong, timestamp, body.as_bytes()).is_err());
}

/// serenity's own builders, serialized, against the spec: what the bot will send is what Discord
/// accepts (catches drift between serenity 0.12.5 and the current API description).
#[test]
fn serenity_builders_serialize_to_spec_valid_bodies() {
    use serenity::all::{
        AutocompleteChoice, ButtonStyle, CreateActionRow, CreateAutocompleteResponse, CreateButton,
        CreateEmbedFooter, EditMessage,
    };
    let check = |m: &str, p: &str, body: Value| {
        let errors = validate_request_body(m, p, &body).expect("spec has a body schema");
        assert!(errors.is_empty(), "{m} {p} {body}: {errors:?}");
    };
    let none = CreateAllowedMentions::new;
    let buttons = CreateActionRow::Buttons(vec![
        CreateButton::new("feedback:up")
            .label("👍")
            .style(ButtonStyle::Secondary),
        CreateButton::new("feedback:down")
            .label("👎")
            .style(ButtonStyle::Secondary),
    ]);
    let embed = CreateEmbed::new()
        .title("Answer")
        .description("text [1]")
        .field("Sources", "1. Section 2", false)
        .footer(CreateEmbedFooter::new("as of 2026"));
    let responses = [
        CreateInteractionResponse::Pong,
        CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new()),
        CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new().ephemeral(true)),
        CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content("hi")
                .embed(embed.clone())
                .components(vec![buttons.clone()])
                .allowed_mentions(none())
                .ephemeral(true),
        ),
        CreateInteractionResponse::Acknowledge,
        CreateInteractionResponse::UpdateMessage(
            CreateInteractionResponseMessage::new()
                .content("thanks")
                .components(vec![]),
        ),
        CreateInteractionResponse::Autocomplete(
            CreateAutocompleteResponse::new()
                .set_choices(vec![AutocompleteChoice::new("Acme", "acme")]),
        ),
    ];
    for r in responses {
        check("POST", CALLBACK, serde_json::to_value(r).unwrap());
    }
    let edit = EditInteractionResponse::new()
        .content("final")
        .embed(embed.clone())
        .components(vec![buttons])
        .allowed_mentions(none());
    check(
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        serde_json::to_value(edit).unwrap(),
    );
    let follow = CreateInteractionResponseFollowup::new()
        .content("more")
        .ephemeral(true)
        .allowed_mentions(none());
    check(
        "POST",
        "/webhooks/{webhook_id}/{webhook_token}",
        serde_json::to_value(follow).unwrap(),
    );
    let msg = CreateMessage::new()
        .content("answer")
        .embed(embed)
        .allowed_mentions(none());
    check("POST", CHANNEL_MESSAGES, serde_json::to_value(msg).unwrap());
    let edit_msg = EditMessage::new()
        .content("edited")
        .allowed_mentions(none());
    check(
        "PATCH",
        "/channels/{channel_id}/messages/{message_id}",
        serde_json::to_value(edit_msg).unwrap(),
    );
    let commands = vec![
        CreateCommand::new("ask").description("Ask").add_option(
            CreateCommandOption::new(CommandOptionType::String, "question", "Your question")
                .required(true)
                .max_length(500),
        ),
        CreateCommand::new("comp")
            .description("Compensation")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "company", "Company")
                    .set_autocomplete(true),
            ),
        CreateCommand::new("about").description("About the guides"),
    ];
    check(
        "PUT",
        GLOBAL_COMMANDS,
        serde_json::to_value(&commands).unwrap(),
    );
    check(
        "PUT",
        "/applications/{application_id}/guilds/{guild_id}/commands",
        serde_json::to_value(&commands).unwrap(),
    );
    let thread = CreateThread::new("Answer thread");
    check(
        "POST",
        "/channels/{channel_id}/messages/{message_id}/threads",
        serde_json::to_value(thread).unwrap(),
    );
}
