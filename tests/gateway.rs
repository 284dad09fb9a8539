//! The gateway transport end to end: `transport::gateway::run` (the real serenity 0.12.5 client)
//! against the fake Discord on 127.0.0.1, over the bundled corpus, with fake LLM servers.
//!
//! Every test waits for the requests the bot records at the fake (no sleeps), checks every body
//! against Discord's OpenAPI description (`assert_all_valid`), and ends with a clean shutdown
//! through the shutdown future.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use guidebot::bot::{BotSettings, Dispatcher, InteractionObserver, InteractionReport, NoObserver};
use guidebot::engine::{Engine, EngineConfig, EngineHandle};
use guidebot::llm::LlmSettings;
use guidebot::transport::gateway::{self, GatewaySettings};
use serde_json::{json, Value};
use serenity::all::GatewayIntents;
use support::fake_discord::{self as fd, FakeConfig, FakeDiscord, RecordedRequest};
use support::fake_llm::{self, FakeLlm};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TOKEN: &str = "fake-bot-token";
const TIMEOUT: Duration = Duration::from_secs(20);
const CALLBACK: &str = "/interactions/{interaction_id}/{interaction_token}/callback";
const EDIT_ORIGINAL: &str = "/webhooks/{webhook_id}/{webhook_token}/messages/@original";
const GLOBAL_COMMANDS: &str = "/applications/{application_id}/commands";
const GUILD_COMMANDS: &str = "/applications/{application_id}/guilds/{guild_id}/commands";
const CHANNEL_MESSAGES: &str = "/channels/{channel_id}/messages";
const THREAD_FROM_MESSAGE: &str = "/channels/{channel_id}/messages/{message_id}/threads";
const TYPING: &str = "/channels/{channel_id}/typing";

/// How a test bot is set up; `Default` is the plain extractive bot.
#[derive(Default)]
struct Setup {
    fake: FakeConfig,
    llm: Option<LlmSettings>,
    bot: BotSettings,
    /// Extra environment for the configuration the gateway settings come from.
    env: Vec<(&'static str, String)>,
    /// Storage for feedback and analytics.
    store: Option<Arc<dyn guidebot::store::Store>>,
    /// Run the live reloader, so `/guidebot reload` can use it.
    reload: bool,
    /// Sees every interaction the dispatcher finishes (none when unset).
    observer: Option<Arc<dyn InteractionObserver>>,
}

/// Counts the interactions (and messages) the dispatcher has finished. Its report is observed
/// after every write the dispatcher queued for it, so a test waits here, then flushes the store,
/// instead of polling for rows.
struct Finished {
    count: tokio::sync::watch::Sender<usize>,
    reports: std::sync::Mutex<Vec<InteractionReport>>,
}

impl Finished {
    fn new() -> Arc<Finished> {
        Arc::new(Finished {
            count: tokio::sync::watch::channel(0).0,
            reports: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The reports of the interactions finished so far, in the order they finished.
    fn reports(&self) -> Vec<InteractionReport> {
        self.reports.lock().expect("reports").clone()
    }

    /// Waits until `n` interactions have finished.
    async fn wait_for(&self, n: usize) {
        let mut count = self.count.subscribe();
        tokio::time::timeout(TIMEOUT, count.wait_for(|finished| *finished >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} interactions did not finish in time"))
            .expect("the counter lives as long as the bot");
    }
}

impl InteractionObserver for Finished {
    fn observe(&self, report: &InteractionReport, _elapsed: Duration) {
        self.reports.lock().expect("reports").push(report.clone());
        self.count.send_modify(|finished| *finished += 1);
    }
}

/// A running bot: the fake Discord, the `gateway::run` task and the trigger of its shutdown.
struct Bot {
    fake: FakeDiscord,
    /// The dispatcher `gateway::run` serves (to flush its store's writer).
    dispatcher: Arc<Dispatcher>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    _index: tempfile::TempDir,
}

use support::setup::bundled_corpus_dir as corpus_dir;

impl Bot {
    /// Starts the fake, the engine over `corpus/` (fresh temp index) and `gateway::run`; returns
    /// once the shard is READY and the commands are registered.
    async fn start(setup: Setup) -> Bot {
        let fake = FakeDiscord::start_with(setup.fake).await;
        let index = tempfile::tempdir().expect("temp index dir");
        let mut config = EngineConfig::new(&corpus_dir(), index.path());
        config.llm = setup.llm;
        let engine_config = config.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(&config))
            .await
            .expect("engine task")
            .expect("engine over the bundled corpus");
        let engines = Arc::new(EngineHandle::new(engine));
        let observer = setup.observer.unwrap_or_else(|| Arc::new(NoObserver));
        let mut dispatcher = Dispatcher::new(Arc::clone(&engines), setup.bot, observer);
        if let Some(store) = setup.store {
            dispatcher = dispatcher.with_store(store);
        }
        if setup.reload {
            let (trigger, requests) = guidebot::reload::reload_channel(&engines);
            dispatcher = dispatcher.with_reload(trigger);
            let options = guidebot::reload::ReloadOptions {
                watch_debounce: None,
                sighup: false,
            };
            // Stops with the test's runtime.
            tokio::spawn(guidebot::reload::watch_and_reload(
                engines,
                engine_config,
                options,
                requests,
                std::future::pending::<()>(),
            ));
        }
        let dispatcher = Arc::new(dispatcher);
        let mut env: HashMap<String, String> = HashMap::from([
            ("DISCORD_TOKEN".to_string(), TOKEN.to_string()),
            ("DISCORD_API_BASE".to_string(), fake.base_url()),
        ]);
        env.extend(setup.env.into_iter().map(|(k, v)| (k.to_string(), v)));
        let config = guidebot::config::Config::load(None, &env).expect("configuration");
        let settings = GatewaySettings::try_from(&config).expect("settings");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway::run(
            settings,
            Arc::clone(&dispatcher),
            async move {
                let _ = stopped.await;
            },
        ));
        fake.wait_for_ready(1, TIMEOUT).await;
        fake.wait_for_request(
            |r| r.method == "PUT" && r.route.is_some_and(|route| route.ends_with("/commands")),
            TIMEOUT,
        )
        .await;
        Bot {
            fake,
            dispatcher,
            stop,
            task,
            _index: index,
        }
    }

    fn app(&self) -> u64 {
        self.fake.application_id()
    }

    /// Dispatches an INTERACTION_CREATE and returns its token.
    async fn send(&self, interaction: Value) -> String {
        let token = interaction["token"].as_str().expect("token").to_string();
        self.fake.dispatch("INTERACTION_CREATE", interaction).await;
        token
    }

    /// The first callback for the interaction with `token`.
    async fn callback(&self, token: &str) -> RecordedRequest {
        self.fake
            .wait_for_request(
                |r| r.is("POST", CALLBACK) && r.param("interaction_token") == token,
                TIMEOUT,
            )
            .await
    }

    /// Dispatches slash command `/name` from `user` and returns its token.
    async fn send_command(&self, name: &str, options: Value, user: u64) -> String {
        self.send(fd::interaction_command(self.app(), name, options, user))
            .await
    }

    /// Asks `/ask question` as `user` and returns its token.
    async fn ask(&self, question: &str, user: u64) -> String {
        let options = json!([fd::opt("question", question)]);
        self.send_command("ask", options, user).await
    }

    /// The first edit of the deferred reply with `token`.
    async fn edit(&self, token: &str) -> RecordedRequest {
        self.fake
            .wait_for_request(|r| is_edit_of(r, token), TIMEOUT)
            .await
    }

    /// Every edit of the deferred reply with `token` once one carries its cited sources, and
    /// that one (the final answer).
    async fn edits_until_cited(&self, token: &str) -> (Vec<RecordedRequest>, RecordedRequest) {
        let cited = |r: &RecordedRequest| {
            let fields = |r: &RecordedRequest| r.json()["embeds"][0]["fields"].as_array().cloned();
            is_edit_of(r, token) && fields(r).is_some_and(|f| !f.is_empty())
        };
        let final_edit = self.fake.wait_for_request(cited, TIMEOUT).await;
        let requests = self.fake.requests().into_iter();
        (
            requests.filter(|r| is_edit_of(r, token)).collect(),
            final_edit,
        )
    }

    /// Runs slash command `/name` from `user` and returns its callback.
    async fn command(&self, name: &str, options: Value, user: u64) -> RecordedRequest {
        let token = self.send_command(name, options, user).await;
        self.callback(&token).await
    }

    /// Runs autocomplete of `/name` with the focused option `option` = `partial`.
    async fn autocomplete(&self, name: &str, option: &str, partial: &str) -> RecordedRequest {
        let token = self
            .send(fd::interaction_autocomplete(
                self.app(),
                name,
                json!([fd::opt_focused(option, partial)]),
                7,
            ))
            .await;
        self.callback(&token).await
    }

    /// Presses the button `custom_id` under a message, as `user`; its callback.
    async fn press(&self, custom_id: &str, user: u64) -> RecordedRequest {
        let press = fd::interaction_component(self.app(), custom_id, user, self.fake.snowflake());
        let token = self.send(press).await;
        self.callback(&token).await
    }

    /// Asks `/ask question private:true` as `user`; its callback.
    async fn ask_private(&self, question: &str, user: u64) -> RecordedRequest {
        let options = json!([fd::opt("question", question), fd::opt("private", true)]);
        self.command("ask", options, user).await
    }

    /// Dispatches a MESSAGE_CREATE of `message`; returns the message's id.
    async fn post(&self, message: Value) -> String {
        let id = message["id"].as_str().expect("a message id").to_string();
        self.fake.dispatch("MESSAGE_CREATE", message).await;
        id
    }

    /// `message` as Discord delivers it to this bot: without the Message Content intent in the
    /// bot's IDENTIFY, a server message that does not mention the bot arrives with its text
    /// withheld (empty content); DMs and mentions keep it.
    async fn as_delivered(&self, mut message: Value) -> Value {
        let intents = self.fake.wait_for_identify(1, TIMEOUT).await.intents;
        let bot = self.fake.bot_user_id().to_string();
        let mentioned = message["mentions"]
            .as_array()
            .is_some_and(|users| users.iter().any(|user| user["id"] == bot.as_str()));
        let in_server = message.get("guild_id").is_some();
        if intents & MESSAGE_CONTENT_BIT == 0 && in_server && !mentioned {
            message["content"] = json!("");
        }
        message
    }

    /// The bot's own user, as a message's mentions list it.
    fn me(&self) -> Value {
        fd::user_json(self.fake.bot_user_id(), "guidebot", true)
    }

    /// A message from human `user` in `channel_id` that mentions the bot: `<@bot> text`.
    fn mention(&self, text: &str, user: u64, channel_id: u64) -> Value {
        let content = format!("<@{}> {text}", self.fake.bot_user_id());
        human_message(&content, user, channel_id, &[self.me()])
    }

    /// The next POST the bot makes to `route` (a channel message, a thread).
    async fn posted(&self, route: &str) -> RecordedRequest {
        self.fake.wait_for_route("POST", route, TIMEOUT).await
    }

    /// Triggers the shutdown future and checks that `run` returns `Ok` with the gateway closed,
    /// then that every request the bot made was valid for Discord.
    async fn stop(self) {
        self.stop
            .send(())
            .expect("run is still waiting for shutdown");
        let result = tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("run returns after the shutdown future completes")
            .expect("run did not panic");
        assert!(result.is_ok(), "run failed: {result:?}");
        self.fake.wait_for_gateway_closed(TIMEOUT).await;
        self.fake.assert_all_valid();
    }
}

/// Asserts that `reply` is a message (type 4) only its user sees (flag 64) that says `text`.
fn assert_ephemeral_says(reply: &Value, text: &str) {
    assert_eq!(reply["type"], 4);
    assert_eq!(flags(&reply["data"]) & 64, 64);
    let description = reply["data"]["embeds"][0]["description"].as_str().unwrap();
    assert!(description.contains(text), "{description}");
}

/// The first embed of `reply`, checked to be a message (type 4).
fn message_embed(reply: &Value) -> &Value {
    assert_eq!(reply["type"], 4);
    &reply["data"]["embeds"][0]
}

/// Asserts that a message body shows `text` (see [`shown`]).
fn assert_shows(body: &Value, text: &str) {
    assert!(shown(body).contains(text), "{}", shown(body));
}

impl Setup {
    /// The plain bot with each of `vars` set to `true`.
    fn with(vars: &[&'static str]) -> Setup {
        let env = vars.iter().map(|var| (*var, "true".to_string())).collect();
        Setup {
            env,
            ..Setup::default()
        }
    }
}

/// Whether `r` edits the deferred reply of the interaction with `token`.
fn is_edit_of(r: &RecordedRequest, token: &str) -> bool {
    r.is("PATCH", EDIT_ORIGINAL) && r.param("webhook_token") == token
}

/// Characters Discord counts toward the 6000 per message, over all embeds of a body.
fn embed_chars(embeds: &Value) -> usize {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    embeds
        .as_array()
        .map(|embeds| {
            embeds
                .iter()
                .map(|e| {
                    len(&e["title"])
                        + len(&e["description"])
                        + len(&e["footer"]["text"])
                        + len(&e["author"]["name"])
                        + e["fields"].as_array().map_or(0, |fields| {
                            fields
                                .iter()
                                .map(|f| len(&f["name"]) + len(&f["value"]))
                                .sum()
                        })
                })
                .sum()
        })
        .unwrap_or(0)
}

fn flags(data: &Value) -> u64 {
    data["flags"].as_u64().unwrap_or(0)
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_lowercase() || c.is_numeric() || "-_'".contains(c))
}

fn valid_description(text: &Value) -> bool {
    text.as_str()
        .is_some_and(|t| (1..=100).contains(&t.chars().count()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_commands_globally_with_plain_intents() {
    let bot = Bot::start(Setup::default()).await;
    let identify = bot.fake.wait_for_identify(1, TIMEOUT).await;
    assert_eq!(identify.token, format!("Bot {TOKEN}"));
    let intents =
        GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES;
    assert_eq!(identify.intents, intents.bits(), "no privileged intent");
    assert_eq!(identify.shard, Some([0, 1]));

    let put = bot
        .fake
        .wait_for_route("PUT", GLOBAL_COMMANDS, TIMEOUT)
        .await;
    assert_eq!(put.param("application_id"), bot.app().to_string());
    assert!(
        put.spec_checked && put.spec_errors.is_empty(),
        "{:?}",
        put.spec_errors
    );
    let commands = put.json().as_array().expect("a bulk overwrite");
    let names: Vec<&str> = commands
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ask", "search", "comp", "source", "about", "guidebot"]
    );
    for command in commands {
        assert!(valid_name(command["name"].as_str().unwrap()), "{command}");
        assert!(valid_description(&command["description"]), "{command}");
        let options = command["options"].as_array().cloned().unwrap_or_default();
        assert!(options.len() <= 25);
        for option in options {
            assert!(valid_name(option["name"].as_str().unwrap()), "{option}");
            assert!(valid_description(&option["description"]), "{option}");
            if let Some(max) = option["max_length"].as_u64() {
                assert!((1..=6000).contains(&max), "{option}");
            }
            // serenity always sends `choices`; Discord accepts an empty list with autocomplete.
            let choices = option["choices"].as_array().map_or(0, Vec::len);
            assert!(
                !(option["autocomplete"] == true && choices > 0),
                "autocomplete cannot be combined with choices: {option}"
            );
        }
    }
    let comp = &commands[2]["options"];
    assert_eq!(comp[0]["name"], "company");
    assert_eq!(comp[0]["autocomplete"], true);
    assert!(
        !bot.fake
            .requests()
            .iter()
            .any(|r| r.is("PUT", GUILD_COMMANDS)),
        "no guild registration without DISCORD_GUILD_ID"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_commands_to_one_guild_and_runs_only_its_shard_range() {
    let guild = 123_456_789_012_345_678u64;
    let bot = Bot::start(Setup {
        fake: FakeConfig {
            recommended_shards: 4,
            ..FakeConfig::default()
        },
        env: vec![
            ("DISCORD_GUILD_ID", guild.to_string()),
            ("GUIDEBOT_SHARDS", "2/4".to_string()),
        ],
        ..Setup::default()
    })
    .await;
    let put = bot
        .fake
        .wait_for_route("PUT", GUILD_COMMANDS, TIMEOUT)
        .await;
    assert_eq!(put.param("guild_id"), guild.to_string());
    assert_eq!(put.json().as_array().unwrap().len(), 6);
    let requests = bot.fake.requests();
    assert!(!requests.iter().any(|r| r.is("PUT", GLOBAL_COMMANDS)));
    // A fixed range never asks Discord for the recommended shard count.
    assert!(!requests.iter().any(|r| r.is("GET", "/gateway/bot")));
    let identifies = bot.fake.identifies();
    assert_eq!(identifies.len(), 1);
    assert_eq!(identifies[0].shard, Some([2, 4]));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_answers_extractively_with_citations_buttons_and_no_pings() {
    let bot = Bot::start(Setup::default()).await;

    let callback = bot
        .command(
            "ask",
            json!([fd::opt("question", "whats the TC for a google L4 MLE?")]),
            11,
        )
        .await;
    assert_eq!(callback.status, 204);
    let body = callback.json();
    assert_eq!(body["type"], 4);
    let data = &body["data"];
    assert_eq!(flags(data) & 64, 0, "a public answer");
    assert_eq!(data["allowed_mentions"]["parse"], json!([]));
    let embeds = data["embeds"].as_array().expect("embeds");
    assert_eq!(embeds[0]["title"], "whats the TC for a google L4 MLE?");
    let fields = embeds.last().unwrap()["fields"]
        .as_array()
        .expect("sources");
    assert!(!fields.is_empty());
    assert!(fields[0]["name"].as_str().unwrap().starts_with("[1] "));
    assert!(fields[0]["value"].as_str().unwrap().starts_with("> "));
    let text: String = embeds
        .iter()
        .filter_map(|e| e["description"].as_str())
        .collect();
    assert!(text.contains("$300k–$430k"), "{text}");
    let buttons = data["components"][0]["components"]
        .as_array()
        .expect("feedback buttons");
    assert_eq!(buttons.len(), 2);
    assert!(buttons[0]["custom_id"]
        .as_str()
        .unwrap()
        .starts_with("feedback:up:"));
    assert_eq!(buttons[0]["emoji"]["name"], "👍");
    assert!(buttons[1]["custom_id"]
        .as_str()
        .unwrap()
        .starts_with("feedback:down:"));
    assert_eq!(buttons[1]["emoji"]["name"], "👎");

    // Private: the same answer, ephemeral.
    let private = bot
        .ask_private("how do I get promoted to senior?", 12)
        .await;
    assert_eq!(private.json()["type"], 4);
    assert_eq!(flags(&private.json()["data"]) & 64, 64);

    // A 6000-character question (more than the option allows, as a misbehaving client could
    // send): answered, every embed within its limits and the message within 6000.
    let huge = "How should I negotiate my compensation offer at Google? ".repeat(110);
    let huge: String = huge.chars().take(6000).collect();
    let answer = bot
        .command("ask", json!([fd::opt("question", huge)]), 13)
        .await;
    assert_eq!(answer.status, 204);
    let embeds = &answer.json()["data"]["embeds"];
    assert!(embed_chars(embeds) <= 6000, "{}", embed_chars(embeds));
    assert!(embeds[0]["title"].as_str().unwrap().chars().count() <= 256);
    assert!(answer.spec_errors.is_empty(), "{:?}", answer.spec_errors);

    // 👍 on the answer: an ephemeral thank-you.
    let custom_id = buttons[0]["custom_id"].as_str().unwrap().to_string();
    let ack = bot.press(&custom_id, 11).await;
    assert_ephemeral_says(ack.json(), "Thanks");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_comp_source_about_autocomplete_and_unknown_commands() {
    let bot = Bot::start(Setup::default()).await;

    let search = bot
        .command("search", json!([fd::opt("query", "system design")]), 21)
        .await;
    let embed = message_embed(search.json());
    assert!(embed["title"].as_str().unwrap().starts_with("Search: "));
    assert!(!embed["fields"].as_array().unwrap().is_empty());
    assert_eq!(
        search.json()["data"]["allowed_mentions"]["parse"],
        json!([])
    );

    let choices = bot.autocomplete("comp", "company", "goo").await;
    assert_eq!(choices.json()["type"], 8);
    let listed = choices.json()["data"]["choices"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.len() <= 25);
    assert!(listed
        .iter()
        .any(|c| c["name"].as_str().unwrap().contains("Google")));
    let everything = bot.autocomplete("comp", "company", "").await;
    assert!(
        everything.json()["data"]["choices"]
            .as_array()
            .unwrap()
            .len()
            <= 25
    );

    let comp = bot
        .command("comp", json!([fd::opt("company", "Google")]), 21)
        .await;
    let embed = message_embed(comp.json());
    assert!(embed["description"].as_str().unwrap().starts_with("```"));
    assert!(embed["description"].as_str().unwrap().contains("L4"));

    let sections = bot.autocomplete("source", "section", "comp").await;
    assert_eq!(sections.json()["type"], 8);
    let offered = sections.json()["data"]["choices"].as_array().unwrap();
    assert!(!offered.is_empty() && offered.len() <= 25);
    let section = offered[0]["value"].as_str().unwrap().to_string();
    let source = bot
        .command("source", json!([fd::opt("section", section)]), 21)
        .await;
    assert_eq!(source.json()["type"], 4);
    let embeds = &source.json()["data"]["embeds"];
    assert!(embed_chars(embeds) <= 6000);
    assert!(!embeds[0]["description"].as_str().unwrap().is_empty());

    let about = bot.command("about", json!([]), 21).await;
    assert_eq!(about.json()["data"]["embeds"][0]["title"], "About guidebot");

    let unknown = bot.command("frobnicate", json!([]), 21).await;
    assert_ephemeral_says(unknown.json(), "don't know the command");
    bot.stop().await;
}

fn openai_bot(fake_llm: &FakeLlm) -> Setup {
    let mut llm = fake_llm.settings();
    llm.max_retries = 0;
    Setup {
        llm: Some(llm),
        bot: BotSettings {
            // Every partial text becomes an edit, so streaming is visible without timing luck.
            edit_interval: Duration::ZERO,
            llm_cooldown: Duration::ZERO,
            ..BotSettings::default()
        },
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_answers_are_deferred_then_edited_as_they_stream() {
    let llm = FakeLlm::openai().await;
    let chunks = [
        fake_llm::openai_chunk(Some("At Google, an L4 "), None),
        fake_llm::openai_chunk(Some("MLE makes about $300k–$430k in total "), None),
        fake_llm::openai_chunk(Some("compensation [1]."), Some("stop")),
        fake_llm::openai_usage_chunk(900, 20),
    ];
    llm.always(fake_llm::sse_response(fake_llm::openai_sse(&chunks, true)))
        .await;
    let bot = Bot::start(openai_bot(&llm)).await;

    let token = bot.ask("whats the TC for a google L4 MLE?", 31).await;
    let deferred = bot.callback(&token).await;
    assert_eq!(deferred.json()["type"], 5);
    assert_eq!(flags(&deferred.json()["data"]) & 64, 0);

    // Edits of @original until one carries the checked answer with its sources.
    let (edits, final_edit) = bot.edits_until_cited(&token).await;
    assert!(edits.len() >= 2, "a partial edit, then the final one");
    assert_eq!(
        edits.last().unwrap().index,
        final_edit.index,
        "the final edit is the last"
    );
    let first = edits[0].json();
    assert!(first["embeds"][0]["footer"]["text"]
        .as_str()
        .unwrap()
        .starts_with("writing"));
    for edit in &edits {
        assert_eq!(
            edit.json()["allowed_mentions"]["parse"],
            json!([]),
            "{}",
            edit.json()
        );
        assert_eq!(edit.param("webhook_id"), bot.app().to_string());
    }
    let answer = &final_edit.json()["embeds"][0];
    assert!(answer["description"]
        .as_str()
        .unwrap()
        .contains("$300k–$430k"));
    assert!(answer["footer"]["text"]
        .as_str()
        .unwrap()
        .contains("openai"));
    assert!(final_edit.json()["components"][0]["components"].is_array());
    assert_eq!(llm.requests().await.len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_llm_falls_back_to_the_extractive_answer_with_a_note() {
    let llm = FakeLlm::openai().await;
    llm.always(fake_llm::json_response(
        500,
        fake_llm::openai_error("overloaded", "server_error"),
    ))
    .await;
    let bot = Bot::start(openai_bot(&llm)).await;

    let token = bot.ask("meta E4 DS total comp?", 32).await;
    assert_eq!(bot.callback(&token).await.json()["type"], 5);
    let edit = bot.edit(&token).await;
    let embed = &edit.json()["embeds"][0];
    let text = embed["description"].as_str().unwrap();
    assert!(text.contains("language model is unavailable"), "{text}");
    assert!(
        !embed["fields"].as_array().unwrap().is_empty(),
        "still cited"
    );
    assert!(embed["footer"]["text"]
        .as_str()
        .unwrap()
        .contains("extractive"));
    assert_eq!(edit.json()["allowed_mentions"]["parse"], json!([]));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_get_a_reply_that_pings_no_one_and_bots_are_ignored() {
    let bot = Bot::start(Setup::default()).await;
    let me = bot.me();

    // Another bot mentioning guidebot: ignored.
    let other_bot = fd::user_json(51, "otherbot", true);
    let ignored = fd::message_create(
        &format!("<@{}> meta E4 DS total comp?", bot.fake.bot_user_id()),
        other_bot,
        std::slice::from_ref(&me),
    );
    bot.post(ignored).await;

    let human = fd::user_json(52, "human", false);
    let question = format!(
        "<@{}> @everyone <@&123> whats the TC for a google L4 MLE?",
        bot.fake.bot_user_id()
    );
    let message = fd::message_create(&question, human, std::slice::from_ref(&me));
    let message_id = bot.post(message).await;

    let reply = bot.posted(CHANNEL_MESSAGES).await;
    assert_eq!(reply.param("channel_id"), fd::CHANNEL_ID.to_string());
    let body = reply.json();
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(body["allowed_mentions"]["replied_user"], false);
    assert_eq!(body["message_reference"]["message_id"], message_id);
    let title = body["embeds"][0]["title"].as_str().unwrap();
    assert!(
        title.contains("@everyone <@&123>"),
        "echoed, but never a ping: {title}"
    );
    assert!(!title.contains(&bot.fake.bot_user_id().to_string()));
    assert!(!body["embeds"][0]["fields"].as_array().unwrap().is_empty());
    // Typing is sent by a task serenity spawns: it may land after the reply, so wait for it.
    bot.posted(TYPING).await;
    let replies = channel_posts(&bot);
    assert_eq!(replies, 1, "the other bot's message got no answer");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_can_be_answered_in_a_new_thread() {
    let bot = Bot::start(Setup::with(&["GUIDEBOT_MENTION_THREADS"])).await;
    let me = bot.me();
    let human = fd::user_json(53, "human", false);
    let message = fd::message_create(
        &format!(
            "<@{}> how do I get promoted to senior?",
            bot.fake.bot_user_id()
        ),
        human,
        &[me],
    );
    let message_id = bot.post(message).await;

    let thread = bot.posted(THREAD_FROM_MESSAGE).await;
    assert_eq!(thread.param("message_id"), message_id);
    assert_eq!(thread.json()["name"], "how do I get promoted to senior?");
    let reply = bot.posted(CHANNEL_MESSAGES).await;
    // The fake gives a thread started from a message that message's id.
    assert_eq!(reply.param("channel_id"), message_id);
    assert!(reply.json().get("message_reference").is_none());
    assert_eq!(reply.json()["allowed_mentions"]["parse"], json!([]));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_interaction_does_not_stop_the_next() {
    let bot = Bot::start(Setup::default()).await;
    bot.fake.fail_next_500("POST", CALLBACK, 1);

    let token = bot.send_command("about", json!([]), 61).await;
    // The callback failed (500); the bot tells the user with an ephemeral notice.
    let attempts = bot
        .fake
        .wait_for_requests(
            |r| r.is("POST", CALLBACK) && r.param("interaction_token") == token,
            2,
            TIMEOUT,
        )
        .await;
    assert_eq!(attempts[0].status, 500);
    assert_eq!(attempts[1].status, 204);
    assert_ephemeral_says(attempts[1].json(), "went wrong");

    // The bot is still up: the next interaction is answered.
    let next = bot.command("about", json!([]), 62).await;
    assert_eq!(next.status, 204);
    assert_eq!(next.json()["data"]["embeds"][0]["title"], "About guidebot");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_startup_still_stops_cleanly() {
    let fake = FakeDiscord::start().await;
    let index = tempfile::tempdir().expect("temp index dir");
    let config = EngineConfig::new(&corpus_dir(), index.path());
    let engine = tokio::task::spawn_blocking(move || Engine::open(&config))
        .await
        .expect("engine task")
        .expect("engine");
    let dispatcher = Arc::new(Dispatcher::new(
        Arc::new(EngineHandle::new(engine)),
        BotSettings::default(),
        Arc::new(NoObserver),
    ));
    let mut settings = GatewaySettings::new(TOKEN);
    settings.api_base = fake.base_url();
    // The shutdown future is complete before the first shard has even been booted.
    let result = tokio::time::timeout(
        TIMEOUT,
        gateway::run(settings, dispatcher, std::future::ready(())),
    )
    .await
    .expect("run returns although shutdown came first");
    assert!(result.is_ok(), "{result:?}");
    fake.wait_for_gateway_closed(TIMEOUT).await;
    fake.assert_all_valid();
}

/// Issue 8: a 👎 pressed in Discord lands in the store, tied to the question it judged, with the
/// user id hashed; the report lists the question for a maintainer.
#[tokio::test]
async fn feedback_round_trip_through_discord_reaches_the_store() {
    let store = Arc::new(guidebot::store::SqliteStore::in_memory().expect("store"));
    let bot = Bot::start(Setup {
        store: Some(store.clone()),
        ..Setup::default()
    })
    .await;
    let question = "how long does promotion from mid to senior take?";
    let callback = bot
        .command("ask", json!([fd::opt("question", question)]), 4242)
        .await;
    let down = callback.json()["data"]["components"][0]["components"][1]["custom_id"]
        .as_str()
        .expect("a 👎 button")
        .to_string();
    assert!(down.starts_with("feedback:down:"));
    let ack = bot.press(&down, 4242).await;
    assert_eq!(flags(&ack.json()["data"]) & 64, 64);

    use guidebot::store::Store;
    // The vote and the question go through the storage writer's queue (committed within about
    // 50 ms), so allow those writes a bounded moment.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let report = loop {
        let report = store
            .report(1, guidebot::util::clock::now_unix())
            .await
            .expect("report");
        let complete = report.questions == 1 && report.feedback_not_helpful == 1;
        if complete || std::time::Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(report.questions, 1, "{report:?}");
    assert_eq!(report.feedback_not_helpful, 1);
    assert!(
        report
            .needs_attention
            .iter()
            .any(|item| item.question == question && item.reason == "not helpful"),
        "{:?}",
        report.needs_attention
    );
    bot.stop().await;
}

/// Issue 18: while the model writes, edits show its unchecked text marked "writing…"; the final
/// edit shows only the checked sentences with their quotes, and says that one was removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_edit_keeps_only_checked_sentences_and_says_what_was_removed() {
    use guidebot::llm::ProviderKind;
    use support::fake_llm::scenarios::{one_unsupported_sentence, CHECKED_TEXT, GOOGLE_ROW};
    for (kind, id) in [(ProviderKind::Anthropic, 41), (ProviderKind::OpenAi, 42)] {
        let llm = FakeLlm::new(kind).await;
        llm.always(one_unsupported_sentence()).await;
        let bot = Bot::start(openai_bot(&llm)).await;

        let token = bot.ask("whats the TC for a google L4 MLE?", id).await;
        assert_eq!(bot.callback(&token).await.json()["type"], 5);
        let (edits, final_edit) = bot.edits_until_cited(&token).await;
        let (last, partials) = edits.split_last().unwrap();
        assert_eq!(
            last.index, final_edit.index,
            "{kind}: the checked edit is the last"
        );
        assert!(!partials.is_empty(), "{kind}: the answer streamed");
        for partial in partials {
            assert_eq!(
                partial.json()["embeds"][0]["footer"]["text"],
                guidebot::bot::render::PARTIAL_FOOTER,
                "{kind}: unchecked text is marked"
            );
        }
        let embed = &final_edit.json()["embeds"][0];
        assert_eq!(
            embed["description"],
            format!("{CHECKED_TEXT}\n\n*{}*", guidebot::answer::trimmed_note(1)),
            "{kind}"
        );
        assert_eq!(
            embed["fields"][0]["name"],
            "[1] Compensation: the real bands at mid"
        );
        assert!(embed["fields"][0]["value"]
            .as_str()
            .unwrap()
            .starts_with(&format!("> {GOOGLE_ROW}")));
        assert!(embed["footer"]["text"]
            .as_str()
            .unwrap()
            .contains(kind.as_str()));
        assert!(!final_edit.json().to_string().contains("$900k"), "{kind}");
        bot.stop().await;
    }
}

/// A burst of 1,000 `/search` interactions dispatched back to back over one shard: every one is
/// acknowledged exactly once with a valid reply, and none is lost. The ack latency (dispatch by
/// the fake → the bot's callback received) is printed for BENCHMARKS.md; the test asserts no time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_interactions_is_acknowledged_without_loss() {
    const BURST: usize = 1_000;
    let questions = [
        "how do I get promoted to senior",
        "what does a mid level ML project look like",
        "google l4 total comp",
        "how much eval design is expected at AI labs",
        "should I specialize in NLP or CV",
        "what is the canonical ML system design question",
    ];
    let bot = Bot::start(Setup::default()).await;
    let mut sent_at = HashMap::with_capacity(BURST);
    let started = std::time::Instant::now();
    for n in 0..BURST {
        let query = questions[n % questions.len()];
        let interaction = fd::interaction_command(
            bot.app(),
            "search",
            json!([fd::opt("query", query)]),
            1_000 + n as u64,
        );
        let token = interaction["token"].as_str().expect("token").to_string();
        sent_at.insert(token, std::time::Instant::now());
        bot.fake.dispatch("INTERACTION_CREATE", interaction).await;
    }
    let callbacks = bot
        .fake
        .wait_for_requests(|r| r.is("POST", CALLBACK), BURST, Duration::from_secs(120))
        .await;
    let mut latencies_us: Vec<u128> = callbacks
        .iter()
        .map(|callback| {
            let token = callback.param("interaction_token");
            let sent = sent_at.remove(token).expect("one callback per interaction");
            assert_eq!(callback.json()["type"], 4, "answered directly");
            callback.received_at.duration_since(sent).as_micros()
        })
        .collect();
    assert!(
        sent_at.is_empty(),
        "{} interactions never answered",
        sent_at.len()
    );
    let last = callbacks.iter().map(|callback| callback.received_at).max();
    let elapsed = last.map_or(Duration::ZERO, |last| last.duration_since(started));
    latencies_us.sort_unstable();
    let at = |q: f64| latencies_us[((latencies_us.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    println!(
        "burst of {BURST} /search over the gateway: all acknowledged in {:.2} s ({:.0}/s); ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        BURST as f64 / elapsed.as_secs_f64().max(1e-9),
        at(0.5),
        at(0.99),
        at(1.0)
    );
    bot.stop().await;
}

/// How many messages the bot has posted in channels so far.
fn channel_posts(bot: &Bot) -> usize {
    bot.fake
        .requests()
        .iter()
        .filter(|r| r.is("POST", CHANNEL_MESSAGES))
        .count()
}

/// The nth (1-based) answer the bot posted as a channel message.
async fn nth_channel_post(bot: &Bot, n: usize) -> RecordedRequest {
    bot.fake
        .wait_for_requests(|r| r.is("POST", CHANNEL_MESSAGES), n, TIMEOUT)
        .await
        .remove(n - 1)
}

/// Everything a message body shows (embeds and content), as one string.
fn shown(body: &Value) -> String {
    format!("{} {}", body["content"], body["embeds"])
}

/// A human's message in `channel_id` (a thread's id for a message in the thread).
fn human_message(content: &str, user: u64, channel_id: u64, mentions: &[Value]) -> Value {
    let mut message = fd::message_create(content, fd::user_json(user, "human", false), mentions);
    message["channel_id"] = json!(channel_id.to_string());
    message
}

/// `message` made a reply to the bot's answer `answer` (a recorded POST), as Discord sends it:
/// the answer in full under `referenced_message`, with its own reference to the question.
fn as_reply_to_bot(mut message: Value, answer: &RecordedRequest, channel_id: u64) -> Value {
    let posted = answer.response.clone().expect("the posted message");
    message["message_reference"] = json!({
        "message_id": posted["id"],
        "channel_id": channel_id.to_string(),
        "guild_id": fd::GUILD_ID.to_string()
    });
    let mut referenced = posted;
    if let Some(question) = answer.json()["message_reference"]["message_id"].as_str() {
        referenced["message_reference"] = json!({
            "message_id": question,
            "channel_id": channel_id.to_string(),
            "guild_id": fd::GUILD_ID.to_string()
        });
        referenced["type"] = json!(19);
    }
    message["referenced_message"] = referenced;
    message["type"] = json!(19);
    message
}

/// The intents bit of the privileged Message Content intent.
const MESSAGE_CONTENT_BIT: u64 = 1 << 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_an_answer_is_a_follow_up_and_unpinged_ones_need_the_intent() {
    reply_chain_follow_ups(None).await;
}

/// The same with history in the store: replies find their chain through the stored links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_an_answer_is_a_follow_up_with_history_in_the_store() {
    reply_chain_follow_ups(Some(in_memory_store())).await;
}

fn in_memory_store() -> Arc<dyn guidebot::store::Store> {
    Arc::new(guidebot::store::SqliteStore::in_memory().expect("store"))
}

async fn reply_chain_follow_ups(store: Option<Arc<dyn guidebot::store::Store>>) {
    let bot = Bot::start(Setup {
        store,
        ..Setup::default()
    })
    .await;
    let identify = bot.fake.wait_for_identify(1, TIMEOUT).await;
    assert_eq!(identify.intents & MESSAGE_CONTENT_BIT, 0, "off by default");

    bot.post(bot.mention("how much does a databricks L4 MLE make", 61, fd::CHANNEL_ID))
        .await;
    let first = nth_channel_post(&bot, 1).await;
    assert_shows(first.json(), "$310k–$480k");

    // Without the intent, a reply that does not ping the bot arrives without its text: ignored.
    let unpinged = as_reply_to_bot(
        human_message("", 61, fd::CHANNEL_ID, &[]),
        &first,
        fd::CHANNEL_ID,
    );
    bot.post(unpinged).await;

    // A reply that pings the bot continues the conversation: "and the base?" is Databricks'.
    let reply = as_reply_to_bot(
        bot.mention("and the base?", 61, fd::CHANNEL_ID),
        &first,
        fd::CHANNEL_ID,
    );
    let reply_id = bot.post(reply).await;
    let second = nth_channel_post(&bot, 2).await;
    let body = second.json();
    assert_shows(body, "$190k–$250k");
    assert_eq!(body["message_reference"]["message_id"], reply_id);
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    let sources = body["embeds"].as_array().unwrap().last().unwrap()["fields"]
        .as_array()
        .expect("cited");
    assert!(!sources.is_empty());
    // A reply to that second answer still continues the chain (Scale AI now, base still asked).
    let third = as_reply_to_bot(
        bot.mention("and at scale ai?", 61, fd::CHANNEL_ID),
        &second,
        fd::CHANNEL_ID,
    );
    bot.post(third).await;
    let third = nth_channel_post(&bot, 3).await;
    assert_shows(third.json(), "$210k–$280k");
    let posts = channel_posts(&bot);
    assert_eq!(posts, 3, "the unpinged reply got no answer");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_bots_thread_messages_and_ask_are_follow_ups() {
    thread_follow_ups(None).await;
}

/// The same with history in the store: the bot's thread is known from its stored turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_bots_thread_follow_ups_work_with_history_in_the_store() {
    thread_follow_ups(Some(in_memory_store())).await;
}

async fn thread_follow_ups(store: Option<Arc<dyn guidebot::store::Store>>) {
    let bot = Bot::start(Setup {
        store,
        ..Setup::with(&[
            "GUIDEBOT_MENTION_THREADS",
            "GUIDEBOT_MESSAGE_CONTENT_INTENT",
        ])
    })
    .await;
    let identify = bot.fake.wait_for_identify(1, TIMEOUT).await;
    assert_eq!(identify.intents & MESSAGE_CONTENT_BIT, MESSAGE_CONTENT_BIT);
    let question = bot.mention("netflix L5 MLE total comp", 62, fd::CHANNEL_ID);
    let thread_id: u64 = bot.post(question).await.parse().unwrap();
    let first = nth_channel_post(&bot, 1).await;
    assert_eq!(first.param("channel_id"), thread_id.to_string());
    assert_shows(first.json(), "$380k–$580k");

    // In the bot's thread, a message without a mention is a follow-up.
    bot.post(human_message("and at databricks?", 62, thread_id, &[]))
        .await;
    let second = nth_channel_post(&bot, 2).await;
    assert_eq!(second.param("channel_id"), thread_id.to_string());
    assert_shows(second.json(), "$310k–$480k");
    assert_eq!(second.json()["allowed_mentions"]["parse"], json!([]));

    // /ask inside the thread reads the same history: "the base there" is Databricks'.
    let ask = fd::in_thread(
        fd::interaction_command(
            bot.app(),
            "ask",
            json!([fd::opt("question", "what's the base there?")]),
            62,
        ),
        thread_id,
        "netflix L5 MLE total comp",
    );
    let token = bot.send(ask).await;
    let callback = bot.callback(&token).await;
    let data = &callback.json()["data"];
    assert_shows(data, "$190k–$250k");
    assert!(
        !data["embeds"].as_array().unwrap().last().unwrap()["fields"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A message in some other thread is not the bot's business.
    bot.post(human_message("and at databricks?", 62, thread_id + 1, &[]))
        .await;
    // ... nor is a bot's message in its own thread.
    let mut from_bot = human_message("and at meta?", 63, thread_id, &[]);
    from_bot["author"]["bot"] = json!(true);
    bot.post(from_bot).await;
    // A last follow-up proves the bot kept reading; only it is answered.
    bot.post(human_message("and at scale ai?", 62, thread_id, &[]))
        .await;
    let last = nth_channel_post(&bot, 3).await;
    assert_shows(last.json(), "$210k–$280k");
    let posts = channel_posts(&bot);
    assert_eq!(posts, 3);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_message_content_intent_an_unpinged_message_in_the_bots_thread_is_a_follow_up() {
    unpinged_message_in_the_bots_thread(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_message_content_intent_an_unpinged_message_in_the_bots_thread_is_ignored() {
    unpinged_message_in_the_bots_thread(false).await;
}

/// The text of the first embed of a posted answer (the answer itself).
fn answer_text(post: &RecordedRequest) -> String {
    let text = post.json()["embeds"][0]["description"].as_str();
    text.unwrap_or_default().to_string()
}

/// Issue 16: in a thread the bot started, "and the base?" without a mention, delivered as Discord
/// delivers it to a bot with or without the Message Content intent (`message_content` sets
/// `GUIDEBOT_MESSAGE_CONTENT_INTENT`). With it, the message is answered in the thread as a
/// follow-up: read with the thread's first question (Databricks' base), reported as one. Without
/// it, the text is withheld and the message ignored; the same words with a mention are answered.
async fn unpinged_message_in_the_bots_thread(message_content: bool) {
    let finished = Finished::new();
    let mut vars = vec!["GUIDEBOT_MENTION_THREADS"];
    if message_content {
        vars.push("GUIDEBOT_MESSAGE_CONTENT_INTENT");
    }
    let bot = Bot::start(Setup {
        observer: Some(finished.clone()),
        ..Setup::with(&vars)
    })
    .await;
    let identify = bot.fake.wait_for_identify(1, TIMEOUT).await;
    assert_eq!(
        identify.intents & MESSAGE_CONTENT_BIT != 0,
        message_content,
        "the setting decides the intent"
    );
    let question = bot.mention("how much does a databricks L4 MLE make", 64, fd::CHANNEL_ID);
    let thread: u64 = bot.post(question).await.parse().unwrap();
    let first = nth_channel_post(&bot, 1).await;
    assert_eq!(first.param("channel_id"), thread.to_string());
    assert_shows(first.json(), "$310k–$480k");

    let unpinged = bot
        .as_delivered(human_message("and the base?", 64, thread, &[]))
        .await;
    let unpinged_id = bot.post(unpinged).await;
    let answered_id = if message_content {
        unpinged_id
    } else {
        // Ignored: a mention with the same words, posted after it, is the thread's next answer.
        bot.post(bot.mention("and the base?", 64, thread)).await
    };
    let second = nth_channel_post(&bot, 2).await;
    assert_eq!(second.param("channel_id"), thread.to_string());
    assert_eq!(
        second.json()["message_reference"]["message_id"],
        answered_id
    );
    assert_eq!(second.json()["allowed_mentions"]["parse"], json!([]));
    // Read with the thread's first question: Databricks' row leads (alone, "and the base?" does
    // not know which company).
    let text = answer_text(&second);
    assert!(text.starts_with("Databricks MLE"), "{text}");
    assert!(text.contains("$190k–$250k"), "{text}");
    finished.wait_for(2).await;
    let follow_up = &finished.reports()[1];
    assert_eq!(follow_up.command, guidebot::bot::Command::Mention);
    assert!(
        follow_up.follow_up,
        "answered as a follow-up: {follow_up:?}"
    );
    assert_eq!(channel_posts(&bot), 2, "one answer for the follow-up");
    bot.stop().await;
}

/// A thread someone else opened in the server's channel (a community thread), registered at the
/// fake so `GET /channels/{id}` describes it as Discord does: type 11, owned by `owner`.
fn community_thread(bot: &Bot, owner: u64) -> u64 {
    let thread = fd::next_snowflake();
    bot.fake.add_channel(json!({
        "id": thread.to_string(),
        "type": 11,
        "guild_id": fd::GUILD_ID.to_string(),
        "parent_id": fd::CHANNEL_ID.to_string(),
        "name": "comp chat",
        "owner_id": owner.to_string(),
        "thread_metadata": {
            "archived": false,
            "auto_archive_duration": 1440,
            "archive_timestamp": fd::TIMESTAMP,
            "locked": false
        }
    }));
    thread
}

/// Issue 16: a thread the bot answered in is one of its conversations even when someone else
/// opened it. A mention there is answered in the thread (no new thread, no reply chain), and a
/// second mention, "and at Meta?", is read with the first question (Google L4 pay): Meta's row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_someone_elses_thread_makes_the_thread_a_conversation() {
    let finished = Finished::new();
    let bot = Bot::start(Setup {
        observer: Some(finished.clone()),
        ..Setup::with(&["GUIDEBOT_MENTION_THREADS"])
    })
    .await;
    let thread = community_thread(&bot, 111);
    let question = bot.mention("whats the total comp for a google L4 MLE?", 112, thread);
    let question_id = bot.post(question).await;
    let first = nth_channel_post(&bot, 1).await;
    assert_eq!(first.param("channel_id"), thread.to_string());
    assert_eq!(first.json()["message_reference"]["message_id"], question_id);
    assert_shows(first.json(), "$300k–$430k");
    finished.wait_for(1).await;

    // Not a reply to the answer: only the thread ties it to the first question.
    let follow_up = bot.mention("and at Meta?", 113, thread);
    let follow_up_id = bot.post(follow_up).await;
    let second = nth_channel_post(&bot, 2).await;
    assert_eq!(second.param("channel_id"), thread.to_string());
    assert_eq!(
        second.json()["message_reference"]["message_id"],
        follow_up_id
    );
    assert_eq!(second.json()["allowed_mentions"]["parse"], json!([]));
    let text = answer_text(&second);
    assert!(text.contains("$300k–$420k"), "Meta's row: {text}");
    finished.wait_for(2).await;
    let report = &finished.reports()[1];
    assert_eq!(report.command, guidebot::bot::Command::Mention);
    assert!(report.follow_up, "answered as a follow-up: {report:?}");
    assert!(!report.citations.is_empty(), "cited: {report:?}");
    assert!(
        !bot.fake
            .requests()
            .iter()
            .any(|r| r.is("POST", THREAD_FROM_MESSAGE)),
        "answered in the thread it was asked in, never in a new one"
    );
    bot.stop().await;
}

/// Issue 16: in someone else's thread the bot answered in, with the Message Content intent, a
/// message without a mention is answered only when the guides cover it, as a follow-up (Meta's
/// row after Google L4 pay); off-topic chatter gets nothing at all, not even a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_someone_elses_thread_unpinged_messages_are_answered_only_when_covered() {
    let finished = Finished::new();
    let bot = Bot::start(Setup {
        observer: Some(finished.clone()),
        ..Setup::with(&["GUIDEBOT_MESSAGE_CONTENT_INTENT"])
    })
    .await;
    let thread = community_thread(&bot, 121);
    bot.post(bot.mention("whats the total comp for a google L4 MLE?", 122, thread))
        .await;
    let first = nth_channel_post(&bot, 1).await;
    assert_eq!(first.param("channel_id"), thread.to_string());
    finished.wait_for(1).await;

    let lunch = human_message("anyone want to grab lunch?", 123, thread, &[]);
    bot.post(bot.as_delivered(lunch).await).await;
    finished.wait_for(2).await;
    let report = &finished.reports()[1];
    assert_eq!(report.command, guidebot::bot::Command::AutoAnswer);
    assert_eq!(report.outcome, guidebot::bot::Outcome::Refused);
    assert_eq!(channel_posts(&bot), 1, "no post for the off-topic message");

    let covered = human_message("and at Meta?", 124, thread, &[]);
    let covered_id = bot.post(bot.as_delivered(covered).await).await;
    let second = nth_channel_post(&bot, 2).await;
    assert_eq!(second.param("channel_id"), thread.to_string());
    assert_eq!(second.json()["message_reference"]["message_id"], covered_id);
    let text = answer_text(&second);
    assert!(text.contains("$300k–$420k"), "Meta's row: {text}");
    finished.wait_for(3).await;
    let report = &finished.reports()[2];
    assert_eq!(report.command, guidebot::bot::Command::AutoAnswer);
    assert_eq!(report.outcome, guidebot::bot::Outcome::Answered);
    assert!(report.follow_up, "answered as a follow-up: {report:?}");
    assert_eq!(channel_posts(&bot), 2);
    bot.stop().await;
}

/// In the bot's own answer thread, a message without a mention is still answered whatever it
/// asks: a refused follow-up gets its refusal, as before issue 16's quiet rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_bots_own_thread_an_unpinged_refused_follow_up_still_gets_the_refusal() {
    let finished = Finished::new();
    let bot = Bot::start(Setup {
        observer: Some(finished.clone()),
        ..Setup::with(&[
            "GUIDEBOT_MENTION_THREADS",
            "GUIDEBOT_MESSAGE_CONTENT_INTENT",
        ])
    })
    .await;
    let question = bot.mention(
        "whats the total comp for a google L4 MLE?",
        131,
        fd::CHANNEL_ID,
    );
    let thread: u64 = bot.post(question).await.parse().unwrap();
    let first = nth_channel_post(&bot, 1).await;
    assert_eq!(first.param("channel_id"), thread.to_string());
    finished.wait_for(1).await;

    let lunch = human_message("anyone want to grab lunch?", 131, thread, &[]);
    let lunch_id = bot.post(bot.as_delivered(lunch).await).await;
    let refusal = nth_channel_post(&bot, 2).await;
    assert_eq!(refusal.param("channel_id"), thread.to_string());
    assert_eq!(refusal.json()["message_reference"]["message_id"], lunch_id);
    assert_eq!(refusal.json()["allowed_mentions"]["parse"], json!([]));
    finished.wait_for(2).await;
    let report = &finished.reports()[1];
    assert_eq!(report.command, guidebot::bot::Command::Mention);
    assert_eq!(report.outcome, guidebot::bot::Outcome::Refused);
    assert_eq!(channel_posts(&bot), 2);
    bot.stop().await;
}

/// `/guidebot <sub>` with `options` from user 71, with or without Manage Server; its callback.
async fn admin(bot: &Bot, sub: &str, options: Value, manage_server: bool) -> RecordedRequest {
    let mut interaction = fd::interaction_command(
        bot.app(),
        "guidebot",
        json!([{"name": sub, "type": 1, "options": options}]),
        71,
    );
    interaction["member"]["permissions"] = json!(if manage_server { "32" } else { "0" });
    let token = bot.send(interaction).await;
    bot.callback(&token).await
}

/// The text of an ephemeral notice (a callback's embed description).
fn notice_text(callback: &RecordedRequest) -> String {
    let body = callback.json();
    assert_eq!(
        flags(&body["data"]) & 64,
        64,
        "admin replies are ephemeral: {body}"
    );
    body["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_need_manage_server_and_set_modes_show_stats_and_reload() {
    let bot = Bot::start(Setup {
        reload: true,
        ..Setup::default()
    })
    .await;
    // Registered for Manage Server only, in servers only.
    let registered = bot
        .fake
        .wait_for_request(
            |r| r.method == "PUT" && r.route.is_some_and(|route| route.ends_with("/commands")),
            TIMEOUT,
        )
        .await;
    let commands = registered.json().as_array().expect("commands").clone();
    let admin_command = commands
        .iter()
        .find(|command| command["name"] == "guidebot")
        .expect("/guidebot registered");
    assert_eq!(admin_command["default_member_permissions"], 32);
    assert_eq!(admin_command["contexts"], json!([0]));

    // Without Manage Server: refused, whatever the subcommand.
    for (sub, options) in [
        ("stats", json!([])),
        ("reload", json!([])),
        ("channel", json!([fd::opt("mode", "off")])),
    ] {
        let refused = admin(&bot, sub, options, false).await;
        assert_eq!(refused.json()["type"], 4);
        assert!(notice_text(&refused).contains("Manage Server"), "{sub}");
    }

    // With it: a thread-per-answer channel answers mentions in a new thread ...
    let threaded = admin(
        &bot,
        "channel",
        json!([fd::opt("mode", "thread-per-answer")]),
        true,
    )
    .await;
    assert!(notice_text(&threaded).contains("**thread-per-answer**"));
    let question = bot.mention(
        "what's the visa sponsorship policy for pets?",
        72,
        fd::CHANNEL_ID,
    );
    let question_id = bot.post(question).await;
    let thread = bot.posted(THREAD_FROM_MESSAGE).await;
    assert_eq!(thread.param("message_id"), question_id);
    let answered = nth_channel_post(&bot, 1).await;
    assert_eq!(answered.param("channel_id"), question_id);

    // ... and a channel switched off answers no mention at all (the mode stays off, so however
    // late the event is handled it is ignored; a mention elsewhere proves the bot still reads).
    let off = admin(&bot, "channel", json!([fd::opt("mode", "off")]), true).await;
    assert!(
        notice_text(&off).contains("**off**"),
        "{}",
        notice_text(&off)
    );
    bot.post(bot.mention("meta E4 DS total comp?", 72, fd::CHANNEL_ID))
        .await;
    let elsewhere = fd::CHANNEL_ID + 7;
    bot.post(bot.mention("netflix L5 MLE total comp", 72, elsewhere))
        .await;
    let second = nth_channel_post(&bot, 2).await;
    assert_eq!(second.param("channel_id"), elsewhere.to_string());
    let posts = channel_posts(&bot);
    assert_eq!(
        posts, 2,
        "the mention in the switched-off channel was ignored"
    );

    // Stats for this server: the one question, refused, listed as unanswered.
    // (Counted right after the answer is posted: ask again until both are in, within a deadline.)
    let deadline = std::time::Instant::now() + TIMEOUT;
    let text = loop {
        let text = notice_text(&admin(&bot, "stats", json!([]), true).await);
        if text.contains("Questions: 2") || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::task::yield_now().await;
    };
    assert!(text.contains("Questions: 2"), "{text}");
    assert!(text.contains("Refused: 1 (50%)"), "{text}");
    assert!(text.contains("visa sponsorship policy for pets"), "{text}");

    // Reload: deferred (a rebuild may take seconds), then the result as an edit.
    let reload = admin(&bot, "reload", json!([]), true).await;
    assert_eq!(reload.json()["type"], 5);
    assert_eq!(flags(&reload.json()["data"]) & 64, 64);
    let token = reload.param("interaction_token").to_string();
    let edit = bot.edit(&token).await;
    let text = edit.json()["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("Reloaded in"), "{text}");
    assert!(text.contains("no change"), "{text}");
    assert_eq!(edit.json()["allowed_mentions"]["parse"], json!([]));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn still_need_help_pings_exactly_the_helper_role_in_the_thread() {
    const ROLE: u64 = 555_000_000_000_000_001;
    let bot = Bot::start(Setup {
        bot: BotSettings {
            helper_role_id: Some(ROLE),
            ..BotSettings::default()
        },
        ..Setup::default()
    })
    .await;
    let thread = fd::next_snowflake();
    let ask = fd::in_thread(
        fd::interaction_command(
            bot.app(),
            "ask",
            json!([fd::opt(
                "question",
                "what's the visa sponsorship policy for pets?"
            )]),
            81,
        ),
        thread,
        "help",
    );
    let token = bot.send(ask).await;
    let answer = bot.callback(&token).await;
    let buttons = answer.json()["data"]["components"][0]["components"]
        .as_array()
        .expect("buttons")
        .clone();
    let help = buttons
        .iter()
        .find(|button| button["label"] == "Still need help?")
        .expect("a hand-off button, also under a refusal");
    let custom_id = help["custom_id"].as_str().unwrap().to_string();
    assert!(custom_id.starts_with("escalate:"), "{custom_id}");

    let press = fd::in_thread(
        fd::interaction_component(bot.app(), &custom_id, 81, fd::next_snowflake()),
        thread,
        "help",
    );
    let token = bot.send(press).await;
    let handed = bot.callback(&token).await;
    let body = handed.json();
    assert_eq!(body["type"], 4);
    let data = &body["data"];
    assert_eq!(flags(data) & 64, 0, "the helpers must see it");
    assert!(data["content"]
        .as_str()
        .unwrap()
        .starts_with(&format!("<@&{ROLE}>")));
    let mentions = &data["allowed_mentions"];
    assert_eq!(mentions["parse"], json!([]), "never @everyone: {mentions}");
    assert_eq!(mentions["roles"], json!([ROLE.to_string()]));
    assert!(mentions["users"].as_array().is_none_or(Vec::is_empty));
    assert!(handed.spec_errors.is_empty(), "{:?}", handed.spec_errors);

    // A private answer offers no hand-off (nobody else could see what it answers).
    let private = bot
        .ask_private("how do I get promoted to senior?", 82)
        .await;
    assert!(!private.json()["data"].to_string().contains("escalate:"));
    bot.stop().await;
}

/// The `custom_id` of the button under a message `body` whose id starts with `prefix`.
fn button(body: &Value, prefix: &str) -> String {
    let rows = body["components"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|button| button["custom_id"].as_str().map(str::to_string))
        .find(|id| id.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} button under {body}"))
}

/// Issue 16: `/guidebot stats` end to end over the gateway, with a store, an LLM and budgets: one
/// question answered by the model, one refused, a 👍 and a 👎 from two members under the answer,
/// one hand-off from the refusal, and the reply of a member with Manage Server counts exactly
/// those, lists the refused question as unanswered and shows today's LLM use (one answer, its 850
/// tokens: the refusal spent nothing) against the server's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guidebot_stats_counts_questions_refusals_votes_hand_offs_and_llm_use() {
    const ROLE: u64 = 555_000_000_000_000_002;
    const REFUSED: &str = "what's the visa sponsorship policy for pets?";
    let llm = FakeLlm::openai_google_l4_answer().await;
    let finished = Finished::new();
    let mut setup = openai_bot(&llm);
    setup.bot.helper_role_id = Some(ROLE);
    setup.bot.budgets = guidebot::bot::dispatch::Budgets {
        guild_requests_per_day: Some(20),
        guild_tokens_per_day: Some(100_000),
        ..Default::default()
    };
    setup.store = Some(in_memory_store());
    setup.observer = Some(finished.clone());
    let bot = Bot::start(setup).await;

    // Answered by the model (850 tokens, the fake says), with its buttons on the final edit.
    let token = bot.ask("whats the TC for a google L4 MLE?", 101).await;
    assert_eq!(bot.callback(&token).await.json()["type"], 5);
    let (_, answered) = bot.edits_until_cited(&token).await;
    let answered = answered.json().clone();
    assert!(
        answered["embeds"][0]["footer"]["text"]
            .as_str()
            .unwrap_or_default()
            .ends_with("answer: openai"),
        "{answered}"
    );
    // Refused: the guides do not cover it, so it is answered at once and the model never sees it.
    let refused = bot
        .command("ask", json!([fd::opt("question", REFUSED)]), 102)
        .await;
    assert_eq!(refused.json()["type"], 4, "{}", refused.json());
    let refused = refused.json()["data"].clone();

    let up = bot.press(&button(&answered, "feedback:up:"), 103).await;
    assert_eq!(flags(&up.json()["data"]) & 64, 64);
    let down = bot.press(&button(&answered, "feedback:down:"), 104).await;
    assert_eq!(flags(&down.json()["data"]) & 64, 64);
    let help = bot.press(&button(&refused, "escalate:"), 104).await;
    assert!(help.json()["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .starts_with(&format!("<@&{ROLE}>")));

    // Two questions, two votes and a hand-off finished: their rows are queued; commit them.
    finished.wait_for(5).await;
    assert!(bot.dispatcher.flush_storage(TIMEOUT).await);
    let stats = notice_text(&admin(&bot, "stats", json!([]), true).await);
    assert_eq!(
        stats,
        format!(
            "**This server, last 30 days**\n\
             Questions: 2\n\
             Refused: 1 (50%)\n\
             Feedback: 1 👍 / 1 👎\n\
             Hand-offs to helpers: 1\n\
             LLM answers today: 1 (budget 20); tokens: 850 (budget 100000)\n\
             **Top unanswered**\n\
             1× {REFUSED}"
        )
    );
    assert_eq!(llm.requests().await.len(), 1, "only the answered question");
    bot.stop().await;
}

/// A forum post as Discord sends it: the thread (registered at the fake, parent `forum`) and its
/// first message, whose id is the thread's.
fn forum_post(bot: &Bot, forum: u64, content: &str, user: u64) -> Value {
    let thread = fd::next_snowflake();
    bot.fake.add_channel(json!({
        "id": thread.to_string(),
        "type": 11,
        "guild_id": fd::GUILD_ID.to_string(),
        "parent_id": forum.to_string(),
        "name": content.chars().take(90).collect::<String>(),
        "owner_id": user.to_string()
    }));
    let mut message = human_message(content, user, thread, &[]);
    message["id"] = json!(thread.to_string());
    message
}

/// An admin (Manage Server) sets `channel` (of Discord channel type `kind`: 0 text, 15 forum) to
/// auto-answer with `/guidebot channel`, and the bot confirms.
async fn make_auto_answer(bot: &Bot, channel: u64, kind: u64, admin: u64) {
    let mut set = fd::interaction_command(
        bot.app(),
        "guidebot",
        json!([{"name": "channel", "type": 1, "options": [fd::opt("mode", "auto-answer")]}]),
        admin,
    );
    set["member"]["permissions"] = json!("32");
    set["channel_id"] = json!(channel.to_string());
    set["channel"] = json!({"id": channel.to_string(), "type": kind, "name": "help", "guild_id": fd::GUILD_ID.to_string()});
    let token = bot.send(set).await;
    assert!(notice_text(&bot.callback(&token).await).contains("auto-answer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_answer_forum_answers_covered_posts_in_their_thread_and_ignores_the_rest() {
    let bot = Bot::start(Setup::with(&["GUIDEBOT_MESSAGE_CONTENT_INTENT"])).await;
    let forum = fd::next_snowflake();
    make_auto_answer(&bot, forum, 15, 91).await;

    // An off-topic post, then one the guides cover, then a bot's post: only the covered one is
    // answered, in the post's own thread, without a mention.
    let off_topic = forum_post(
        &bot,
        forum,
        "anyone know a good pizza place near the office?",
        92,
    );
    let off_topic_thread = off_topic["channel_id"].as_str().unwrap().to_string();
    bot.post(off_topic).await;
    let covered = forum_post(&bot, forum, "whats the total comp for a google L4 MLE?", 93);
    let covered_thread = covered["channel_id"].as_str().unwrap().to_string();
    bot.post(covered).await;
    let mut by_bot = forum_post(&bot, forum, "meta E4 DS total comp?", 94);
    by_bot["author"]["bot"] = json!(true);
    bot.post(by_bot).await;

    let answer = nth_channel_post(&bot, 1).await;
    assert_eq!(answer.param("channel_id"), covered_thread);
    let body = answer.json();
    assert_shows(body, "$300k–$430k");
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    // A later covered post proves the off-topic and bot posts were read and passed over.
    let later = forum_post(&bot, forum, "do I need to know spark at mid?", 95);
    let later_thread = later["channel_id"].as_str().unwrap().to_string();
    bot.post(later).await;
    let second = nth_channel_post(&bot, 2).await;
    assert_eq!(second.param("channel_id"), later_thread);
    let touched: Vec<RecordedRequest> = bot
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains(&format!("/channels/{off_topic_thread}/")))
        .collect();
    assert!(
        touched.is_empty(),
        "the off-topic post got something: {touched:?}"
    );
    let posts = channel_posts(&bot);
    assert_eq!(posts, 2);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_answer_channel_answers_new_messages_without_a_mention() {
    let bot = Bot::start(Setup::with(&["GUIDEBOT_MESSAGE_CONTENT_INTENT"])).await;
    let channel = fd::next_snowflake();
    make_auto_answer(&bot, channel, 0, 96).await;

    bot.post(human_message(
        "anyone up for lunch at noon?",
        97,
        channel,
        &[],
    ))
    .await;
    let covered = human_message(
        "whats the total comp for a google L4 MLE?",
        97,
        channel,
        &[],
    );
    let covered_id = bot.post(covered).await;
    let answer = nth_channel_post(&bot, 1).await;
    assert_eq!(answer.param("channel_id"), channel.to_string());
    assert_eq!(answer.json()["message_reference"]["message_id"], covered_id);
    assert_shows(answer.json(), "$300k–$430k");
    // Messages in other channels still need a mention.
    bot.post(human_message(
        "meta E4 DS total comp?",
        97,
        fd::CHANNEL_ID,
        &[],
    ))
    .await;
    let later = human_message("do I need to know spark at mid?", 97, channel, &[]);
    bot.post(later).await;
    nth_channel_post(&bot, 2).await;
    let posts: Vec<RecordedRequest> = bot
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", CHANNEL_MESSAGES))
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(posts
        .iter()
        .all(|post| post.param("channel_id") == channel.to_string()));
    assert!(
        !bot.fake.requests().iter().any(|r| r.is("POST", TYPING)),
        "no typing before a maybe-silent answer"
    );
    bot.stop().await;
}
