//! The `guidebot` binary end to end (issue 2, "CLI"): `index`, `search` (text and `--json`), errors
//! and exit codes, and rebuilds when the corpus changes. Each test has its own index (and corpus
//! copy when it edits one) in a temporary folder.

mod support;

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::setup::bundled_corpus_dir as bundled_corpus;

fn guidebot(corpus: &Path, index: &Path) -> assert_cmd::Command {
    let mut command = cargo_bin_cmd!("guidebot");
    command
        .arg("--corpus")
        .arg(corpus)
        .arg("--index")
        .arg(index)
        .env_remove("GUIDEBOT_CORPUS_DIR")
        .env_remove("GUIDEBOT_INDEX_DIR")
        .env("RUST_LOG", "warn");
    command
}

use support::setup::{run_cli, stdout_json, success_json};

/// Runs `guidebot ARGS` over `corpus` and `index`; its output, whatever the exit code.
fn run(corpus: &Path, index: &Path, args: &[&str]) -> std::process::Output {
    guidebot(corpus, index).args(args).output().unwrap()
}

/// Runs `guidebot ARGS` over `corpus` and `index`, which must succeed; its standard output.
fn stdout_of(corpus: &Path, index: &Path, args: &[&str]) -> String {
    let output = guidebot(corpus, index).args(args).assert().success();
    String::from_utf8_lossy(&output.get_output().stdout).into_owned()
}

fn copy_corpus(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(bundled_corpus()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn guide_file(corpus: &Path) -> PathBuf {
    std::fs::read_dir(corpus)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "md"))
        .expect("the corpus has a guide")
}

fn index_outcome(corpus: &Path, index: &Path) -> Value {
    let output = run(corpus, index, &["index", "--json"]);
    success_json(&output)
}

#[test]
fn index_builds_then_reports_up_to_date() {
    let temp = tempfile::tempdir().unwrap();
    let index = temp.path().join("index");
    let first = stdout_of(&bundled_corpus(), &index, &["index"]);
    assert!(first.contains("Built the index"), "first run: {first}");
    let second = stdout_of(&bundled_corpus(), &index, &["index"]);
    assert!(second.contains("up to date"), "second run: {second}");
    assert!(index.join("CURRENT").is_file());
}

#[test]
fn search_json_has_the_documented_shape() {
    let temp = tempfile::tempdir().unwrap();
    let output = guidebot(&bundled_corpus(), &temp.path().join("index"))
        .args(["search", "google l4 total comp", "-k", "3", "--json"])
        .output()
        .unwrap();
    let value = success_json(&output);
    let object = value.as_object().expect("one JSON object");
    assert_eq!(object["query"], "google l4 total comp");
    assert_eq!(object["relevant"], true);
    let hits = object["hits"].as_array().expect("hits is an array");
    assert!(
        !hits.is_empty() && hits.len() <= 3,
        "{} hits for -k 3",
        hits.len()
    );
    for (position, hit) in hits.iter().enumerate() {
        let hit = hit.as_object().expect("a hit is an object");
        for key in [
            "rank",
            "score",
            "guide",
            "section_id",
            "heading",
            "heading_path",
            "text",
            "snippet",
        ] {
            assert!(hit.contains_key(key), "hit lacks {key}: {hit:?}");
        }
        assert_eq!(hit["rank"].as_u64(), Some(position as u64 + 1));
        assert!(hit["score"].is_number());
        for key in ["guide", "section_id", "heading", "text", "snippet"] {
            assert!(
                hit[key].is_string(),
                "{key} is not a string: {:?}",
                hit[key]
            );
        }
        let path = hit["heading_path"]
            .as_array()
            .expect("heading_path is an array");
        assert!(path.iter().all(Value::is_string));
    }
    assert!(
        hits[0]["text"].as_str().unwrap().contains("L4"),
        "top hit: {:?}",
        hits[0]["text"]
    );
}

#[test]
fn off_topic_search_is_not_relevant() {
    let temp = tempfile::tempdir().unwrap();
    let index = temp.path().join("index");
    let output = run(
        &bundled_corpus(),
        &index,
        &["search", "how do I bake bread", "--json"],
    );
    assert!(output.status.success());
    assert_eq!(stdout_json(&output)["relevant"], false);

    let stdout = stdout_of(
        &bundled_corpus(),
        &index,
        &["search", "how do I bake bread"],
    );
    assert!(
        stdout.contains("Nothing in the guides answers this"),
        "{stdout}"
    );
}

/// Issue 14 ("IO errors print their cause twice": `Is a directory (os error 21): Is a directory
/// (os error 21)`): a command failing on a file system error names the OS's cause once.
#[test]
fn a_file_system_error_names_its_cause_once() {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let folder = temp.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let index = temp.path().join("index");
    let guides = bundled_corpus();
    let config_is_a_folder = ["--config", folder.to_str().unwrap(), "search", "x"];
    for (corpus, index, args) in [
        (file.as_path(), index.as_path(), &["search", "x"][..]),
        (guides.as_path(), file.as_path(), &["search", "x"][..]),
        (guides.as_path(), index.as_path(), &config_is_a_folder[..]),
    ] {
        let output = run(corpus, index, args);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.matches("(os error").count(), 1, "{stderr}");
    }
}

#[test]
fn empty_query_gives_a_clear_message() {
    let temp = tempfile::tempdir().unwrap();
    let index = temp.path().join("index");
    // Text output: an error on stderr and a failing exit code.
    let output = run(&bundled_corpus(), &index, &["search", "  "]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the question is empty"), "stderr: {stderr}");
    // JSON output: still one object (for scripts), with the message in `error`, exit code 1 as
    // the README says.
    let output = run(&bundled_corpus(), &index, &["search", "", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let value = stdout_json(&output);
    assert_eq!(value["relevant"], false);
    assert_eq!(value["hits"].as_array().map(Vec::len), Some(0));
    assert!(value["error"]
        .as_str()
        .unwrap_or_default()
        .contains("the question is empty"));
}

#[test]
fn an_empty_ask_prints_json_and_an_empty_comp_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let index = temp.path().join("index");
    let output = run(&bundled_corpus(), &index, &["ask", "", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout_json(&output)["error"]
        .as_str()
        .unwrap_or_default()
        .contains("the question is empty"));

    let output = run(&bundled_corpus(), &index, &["comp", ""]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--list"));

    let output = run(
        &bundled_corpus(),
        &index,
        &["comp", "--list", "goog", "--json"],
    );
    assert!(output.status.success());
    assert_eq!(
        stdout_json(&output)["companies"],
        serde_json::json!(["Google"])
    );
}

#[test]
fn broken_corpus_file_is_named_with_its_line() {
    let temp = tempfile::tempdir().unwrap();
    let corpus = temp.path().join("corpus");
    copy_corpus(&corpus);
    // Line 10 holds a heading without a title: skipped, with a warning naming file and line; the
    // rest of the corpus still answers.
    // Adds guide `name` to the corpus, searches, and checks stderr names `place` (file:line).
    let index = temp.path().join("index");
    let search_naming = |name: &str, text: &str, place: &str| {
        std::fs::write(corpus.join(name), text).unwrap();
        let output = run(&corpus, &index, &["search", "google l4"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(place), "stderr names file:line: {stderr}");
        output.status.success()
    };
    let odd = "+++\ntitle = \"Odd\"\nslug = \"odd\"\nauthor = \"A\"\nyear = 2026\n+++\n\nSome text.\n\n##\n\nMore text.\n";
    assert!(
        search_naming("odd.md", odd, "odd.md:10"),
        "one odd construct never stops the corpus"
    );

    // Front matter that cannot be read is an error naming the file and the line.
    let broken = "+++\ntitle = \"Broken\"\nslug = \"broken\"\nauthor = \"A\"\nyear = \"nope\"\n+++\n\nSome text.\n";
    assert!(
        !search_naming("broken.md", broken, "broken.md:5"),
        "a broken corpus must fail"
    );
}

#[test]
fn editing_the_corpus_triggers_a_rebuild() {
    let temp = tempfile::tempdir().unwrap();
    let corpus = temp.path().join("corpus");
    let index = temp.path().join("index");
    copy_corpus(&corpus);
    let first = index_outcome(&corpus, &index);
    assert_eq!(first["outcome"]["outcome"], "built", "{first}");
    let second = index_outcome(&corpus, &index);
    assert_eq!(second["outcome"]["outcome"], "opened", "{second}");

    let guide = guide_file(&corpus);
    let mut text = std::fs::read_to_string(&guide).unwrap();
    text.push_str("\nA new paragraph about sourdough starters and proofing baskets.\n");
    std::fs::write(&guide, text).unwrap();
    let third = index_outcome(&corpus, &index);
    assert_eq!(third["outcome"]["outcome"], "built", "{third}");
    assert!(
        third["outcome"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("corpus changed"),
        "{third}"
    );
    assert_ne!(third["fingerprint"], second["fingerprint"]);
    assert_eq!(
        third["passages"].as_u64(),
        second["passages"].as_u64().map(|n| n + 1)
    );

    // The new text is searchable right away.
    let output = run(
        &corpus,
        &index,
        &["search", "sourdough proofing baskets", "--json"],
    );
    let value = stdout_json(&output);
    assert!(
        value["hits"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("sourdough"),
        "{value}"
    );
    let fourth = index_outcome(&corpus, &index);
    assert_eq!(fourth["outcome"]["outcome"], "opened", "{fourth}");
}

/// Runs `guidebot --corpus CORPUS --index INDEX ARGS` in process, which must succeed.
async fn succeeds_in_process(corpus: &str, index: &Path, args: &[String]) {
    let index = index.to_str().unwrap();
    let mut all = vec!["guidebot", "--corpus", corpus, "--index", index];
    all.extend(args.iter().map(String::as_str));
    let (result, out) = run_cli(&all, &[]).await;
    result.unwrap_or_else(|error| panic!("{args:?}: {error:#}\n{out}"));
}

/// A valid interactions public key, so `serve --http` gets as far as loading the guides.
const PUBLIC_KEY: &str = "67c6bd767ca099e79efac9fcce4d2022a63bf7dea780e7f3d813f694c1597089";

/// Every command that reads the guides, as arguments after `guidebot`.
fn commands_reading_the_guides(dir: &Path) -> Vec<Vec<String>> {
    let questions = dir.join("questions.toml");
    std::fs::write(
        &questions,
        "[[question]]\nid = \"q\"\ntext = \"google l4 total comp\"\nsections = []\nfacts = []\n",
    )
    .unwrap();
    let args = |list: &[&str]| list.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
    vec![
        args(&["ask", "google l4 total comp", "--extractive"]),
        args(&["search", "google l4 total comp"]),
        args(&["comp", "google"]),
        args(&["index"]),
        args(&[
            "eval",
            "--no-baseline",
            "--questions",
            questions.to_str().unwrap(),
        ]),
        args(&["config", "check"]),
        args(&["serve", "--http", "127.0.0.1:0"]),
    ]
}

async fn fails_naming(args: Vec<String>, global: &[&str], wanted: &str) {
    let mut all = vec!["guidebot".to_string()];
    all.extend(global.iter().map(|arg| arg.to_string()));
    all.extend(args.iter().cloned());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let (result, out) = run_cli(&all, &[("DISCORD_PUBLIC_KEY", PUBLIC_KEY)]).await;
    let error = format!("{:#}", result.expect_err(&format!("{args:?} must fail")));
    assert!(error.contains(wanted), "{args:?}: {error}\n{out}");
}

/// Issue 13: `--corpus` reaches every command that reads the guides (a missing folder is named).
#[tokio::test]
async fn every_command_honours_the_corpus_flag() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("no-such-guides");
    let missing = missing.to_str().unwrap();
    let index = temp.path().join("index");
    for args in commands_reading_the_guides(temp.path()) {
        fails_naming(
            args,
            &["--corpus", missing, "--index", index.to_str().unwrap()],
            missing,
        )
        .await;
    }
}

/// Issue 13: `--config` reaches every command: its `paths.corpus_dir` is the one used, and its
/// `bot.store_path` is the database `report` reads.
#[tokio::test]
async fn every_command_honours_the_config_flag() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("guides-from-the-file");
    let store = temp.path().join("from-the-file.sqlite");
    let file = temp.path().join("guidebot.toml");
    std::fs::write(
        &file,
        format!(
            "[paths]\ncorpus_dir = {:?}\nindex_dir = {:?}\n[bot]\nstore_path = {:?}\n",
            missing.display().to_string(),
            temp.path().join("index").display().to_string(),
            store.display().to_string()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for args in commands_reading_the_guides(temp.path()) {
        fails_naming(args, &["--config", file], missing.to_str().unwrap()).await;
    }
    let report = vec!["report".to_string()];
    fails_naming(report, &["--config", file], store.to_str().unwrap()).await;
}

/// Issue 13: `--index` reaches every command that opens an index: it is built where the flag
/// says; `eval` indexes in memory and writes nothing there; `config check` reports the flag;
/// `report` (no index) accepts it.
#[tokio::test]
async fn every_command_honours_the_index_flag() {
    let temp = tempfile::tempdir().unwrap();
    let corpus = bundled_corpus();
    let corpus = corpus.to_str().unwrap();
    let commands = commands_reading_the_guides(temp.path());
    for (n, args) in commands.iter().take(4).enumerate() {
        let index = temp.path().join(format!("index-{n}"));
        succeeds_in_process(corpus, &index, args).await;
        assert!(
            index.join("CURRENT").is_file(),
            "{args:?} did not build its index in --index"
        );
    }
    let index = temp.path().join("index-eval");
    succeeds_in_process(corpus, &index, &commands[4]).await;
    assert!(!index.exists(), "eval indexes in memory");

    let index = temp.path().join("index-check");
    let (result, out) = run_cli(
        &[
            "guidebot",
            "config",
            "check",
            "--index",
            index.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    result.unwrap();
    assert!(
        out.contains(index.to_str().unwrap()) && out.contains("flag --index"),
        "{out}"
    );

    let store = temp.path().join("guidebot.sqlite");
    guidebot::store::SqliteStore::open(&store).unwrap();
    let report = [
        "guidebot",
        "report",
        "--store",
        store.to_str().unwrap(),
        "--corpus",
        corpus,
    ];
    let with_index = [&report[..], &["--index", index.to_str().unwrap()]].concat();
    let (result, out) = run_cli(&with_index, &[]).await;
    result.unwrap_or_else(|error| panic!("report: {error:#}\n{out}"));
    assert!(out.contains("question(s)"), "{out}");
    // `--store FILE` wins over a configured PostgreSQL URL (here one nothing listens on).
    let url = (
        "GUIDEBOT_STORE_URL",
        "postgres://guidebot@127.0.0.1:9/guidebot",
    );
    let (result, out) = run_cli(&report, &[url]).await;
    result.unwrap_or_else(|error| panic!("report --store with a URL set: {error:#}\n{out}"));
    assert!(out.contains("question(s)"), "{out}");
}

/// Issue 14: `paths.max_guide_bytes` reaches every command that reads the guides (the CLI used
/// the built-in 10 MB whatever the configuration said; only `serve` honoured it): a guide over a
/// smaller limit fails the command, naming the file and the limit.
#[tokio::test]
async fn every_command_honours_the_guide_size_limit() {
    let guide = guide_file(&bundled_corpus());
    let guide_name = guide.file_name().unwrap().to_string_lossy().into_owned();
    every_command_fails_under_a_size_limit(
        "max_guide_bytes = 1024",
        &[&format!("{guide_name} is "), "over the 1024-byte limit"],
    )
    .await;
}

/// Runs every command that reads the guides with the bundled corpus and `limit` (a `[paths]`
/// line) in a config file: each must fail with every one of `expected` in its error, and nothing
/// may be indexed.
async fn every_command_fails_under_a_size_limit(limit: &str, expected: &[&str]) {
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("guidebot.toml");
    std::fs::write(
        &file,
        format!(
            "[paths]\ncorpus_dir = {:?}\nindex_dir = {:?}\n{limit}\n",
            bundled_corpus().display().to_string(),
            temp.path().join("index").display().to_string(),
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let mut checked = 0;
    for args in commands_reading_the_guides(temp.path()) {
        // `config check` reports settings; it reads no guide.
        if args[0] == "config" {
            continue;
        }
        for expected in expected {
            fails_naming(args.clone(), &["--config", file], expected).await;
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
    assert!(
        !temp.path().join("index").join("CURRENT").exists(),
        "nothing was indexed over the limit ({limit})"
    );
}

/// Issue 14: `paths.max_corpus_bytes` (the whole corpus) reaches every command that reads the
/// guides, like the per-file limit: the bundled guides over a small limit fail the command with
/// the setting to raise, and nothing is indexed.
#[tokio::test]
async fn every_command_honours_the_corpus_size_limit() {
    every_command_fails_under_a_size_limit(
        "max_corpus_bytes = 4096",
        &[
            "over the 4096-byte limit for the whole corpus",
            "paths.max_corpus_bytes",
        ],
    )
    .await;
}

/// Issue 14: a pipe named like a guide hung every command, and a link to `/dev/zero` read until
/// memory ran out. As real processes (killed, and failed, if one is still running after two
/// minutes): `index` and `search` finish, answer from the real guide and name both odd files in
/// a warning.
#[test]
fn a_pipe_and_a_link_to_dev_zero_in_the_corpus_never_hang_a_command() {
    let temp = tempfile::tempdir().unwrap();
    let corpus = temp.path().join("corpus");
    copy_corpus(&corpus);
    let pipe = std::ffi::CString::new(corpus.join("pipe.md").to_string_lossy().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path; the result is checked.
    assert_eq!(unsafe { libc::mkfifo(pipe.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink("/dev/zero", corpus.join("zero.md")).unwrap();
    let index = temp.path().join("index");
    for args in [
        &["index", "--json"][..],
        &["search", "--json", "whats the TC for a google L4 MLE?"][..],
    ] {
        let output = guidebot(&corpus, &index)
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{args:?} ({}): {stderr}",
            output.status
        );
        for name in ["pipe.md", "zero.md"] {
            assert!(
                stderr.contains(name) && stderr.contains("not a regular file"),
                "{args:?} does not name {name}: {stderr}"
            );
        }
        let value = stdout_json(&output);
        if args[0] == "index" {
            assert_eq!(value["guides"], 1, "{value}");
        } else {
            assert_eq!(
                value["hits"][0]["section_id"], "compensation-the-real-bands-at-mid",
                "{value}"
            );
        }
    }
}

/// Issue 14, memory on big inputs: a 5 MB guide that is one paragraph without a sentence end
/// took 215 MB to index (one giant passage; 47 MB took 1.8 GB). It is now cut into thousands of
/// bounded passages, and the `index` process's peak resident memory (from `wait4`) stays under
/// [`INDEX_PEAK_LIMIT_KIB`] (measured: 106 MB in a debug build, with a 20,000-word vocabulary;
/// README "Limits and failure behaviour" gives the figure for distinct words).
#[test]
fn indexing_a_5_mb_one_paragraph_guide_stays_within_its_memory_bound() {
    let temp = tempfile::tempdir().unwrap();
    let corpus = temp.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    // Seeded words from a 20,000-word vocabulary, no sentence ends, one line.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let vocabulary: Vec<String> = (0..20_000)
        .map(|_| {
            let bits = next();
            let length = 3 + (bits % 7) as usize;
            (0..length)
                .map(|at| (b'a' + ((bits >> (6 * at)) % 26) as u8) as char)
                .collect()
        })
        .collect();
    let mut text = String::from("# Big\n\n");
    while text.len() < 5_000_000 {
        text.push_str(&vocabulary[(next() % vocabulary.len() as u64) as usize]);
        text.push(' ');
    }
    text.push('\n');
    std::fs::write(corpus.join("big.md"), &text).unwrap();

    // Reaped by `wait4` below, which also reports its peak memory (`Child::wait` cannot).
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_guidebot"))
        .arg("--corpus")
        .arg(&corpus)
        .arg("--index")
        .arg(temp.path().join("index"))
        .arg("index")
        .env_remove("GUIDEBOT_CORPUS_DIR")
        .env_remove("GUIDEBOT_INDEX_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child, which nothing else
    // waits for (std's Child does not wait on drop).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "index failed: status {status}"
    );
    let peak_kib = usage.ru_maxrss;
    assert!(
        peak_kib < INDEX_PEAK_LIMIT_KIB,
        "indexing 5 MB peaked at {} MB",
        peak_kib / 1024
    );
    let passages = success_json(
        &guidebot(&corpus, &temp.path().join("index"))
            .args(["index", "--json"])
            .output()
            .unwrap(),
    )["passages"]
        .as_u64()
        .unwrap_or_default();
    assert!(
        passages > 5_000,
        "{passages} passages: the paragraph was not cut"
    );
}

/// [`indexing_a_5_mb_one_paragraph_guide_stays_within_its_memory_bound`]'s limit: the writer's
/// 40 MB, the guide and its passages, and headroom.
const INDEX_PEAK_LIMIT_KIB: libc::c_long = 160 * 1024;

#[test]
fn an_io_error_names_its_cause_once() {
    let temp = tempfile::tempdir().unwrap();
    let not_a_folder = temp.path().join("guides.txt");
    std::fs::write(&not_a_folder, "not a folder").unwrap();
    let output = run(
        &not_a_folder,
        &temp.path().join("index"),
        &["search", "google l4"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Not a directory").count(),
        1,
        "the cause is printed once: {stderr}"
    );
}

#[tokio::test]
async fn report_groups_refused_questions_into_coverage_gaps() {
    use guidebot::store::{QuestionRecord, SqliteStore, Store};
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join("guidebot.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let now = guidebot::util::clock::now_unix();
    for (question, refused) in [
        ("does google sponsor H1B visas?", true),
        ("does google sponsor H1B visas?", true),
        ("H1B visa sponsorship at meta?", true),
        ("how do I negotiate a relocation package", true),
        ("relocation package at meta?", true),
        ("whats the TC for a google L4 MLE?", false),
    ] {
        store
            .record_question(&QuestionRecord {
                at_unix: now,
                user_hash: "u".to_string(),
                guild_hash: None,
                command: "ask".to_string(),
                question: question.to_string(),
                refused,
                mode: "extractive".to_string(),
                top_coverage: None,
                answer_key: None,
                citations: Vec::new(),
                fingerprint: "f".to_string(),
            })
            .await
            .unwrap();
    }
    drop(store);
    let store_arg = path.to_str().unwrap().to_string();
    let (result, out) = run_cli(
        &["guidebot", "report", "--store", &store_arg, "--json"],
        &[],
    )
    .await;
    result.unwrap_or_else(|error| panic!("report: {error:#}\n{out}"));
    let report: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    let gaps = report["coverage_gaps"].as_array().expect("coverage_gaps");
    assert_eq!(gaps.len(), 2, "{gaps:#?}");
    assert_eq!(gaps[0]["count"], 3);
    assert_eq!(gaps[0]["questions"], 2);
    assert!(gaps[0]["terms"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("visa")));
    assert_eq!(gaps[0]["examples"][0], "does google sponsor H1B visas?");
    assert_eq!(gaps[1]["count"], 2);
    // The text report shows the same groups.
    let (result, out) = run_cli(&["guidebot", "report", "--store", &store_arg], &[]).await;
    result.unwrap();
    assert!(out.contains("Coverage gaps"), "{out}");
    assert!(out.contains("does google sponsor H1B visas?"), "{out}");
}
