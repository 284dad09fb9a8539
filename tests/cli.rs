//! The `guidebot` binary end to end (issue 2, "CLI"): `index`, `search` (text and `--json`), errors
//! and exit codes, and rebuilds when the corpus changes. Each test has its own index (and corpus
//! copy when it edits one) in a temporary folder.

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn bundled_corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

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

fn stdout_json(output: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("stdout is not one JSON object ({error}): {stdout}"))
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
    let output = guidebot(corpus, index)
        .args(["index", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "index failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_json(&output)
}

#[test]
fn index_builds_then_reports_up_to_date() {
    let temp = tempfile::tempdir().unwrap();
    let index = temp.path().join("index");
    let first = guidebot(&bundled_corpus(), &index)
        .arg("index")
        .assert()
        .success();
    let first = String::from_utf8_lossy(&first.get_output().stdout).into_owned();
    assert!(first.contains("Built the index"), "first run: {first}");
    let second = guidebot(&bundled_corpus(), &index)
        .arg("index")
        .assert()
        .success();
    let second = String::from_utf8_lossy(&second.get_output().stdout).into_owned();
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
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = stdout_json(&output);
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
    let output = guidebot(&bundled_corpus(), &index)
        .args(["search", "how do I bake bread", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(stdout_json(&output)["relevant"], false);

    let text = guidebot(&bundled_corpus(), &index)
        .args(["search", "how do I bake bread"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&text.get_output().stdout).into_owned();
    assert!(
        stdout.contains("Nothing in the guides answers this"),
        "{stdout}"
    );
}

#[test]
fn empty_query_gives_a_clear_message() {
    let temp = tempfile::tempdir().unwrap();
    let index = temp.path().join("index");
    // Text output: an error on stderr and a failing exit code.
    let output = guidebot(&bundled_corpus(), &index)
        .args(["search", "  "])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the question is empty"), "stderr: {stderr}");
    // JSON output: still one object (for scripts), with the message in `error`, exit code 0.
    let output = guidebot(&bundled_corpus(), &index)
        .args(["search", "", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let value = stdout_json(&output);
    assert_eq!(value["relevant"], false);
    assert_eq!(value["hits"].as_array().map(Vec::len), Some(0));
    assert!(value["error"]
        .as_str()
        .unwrap_or_default()
        .contains("the question is empty"));
}

#[test]
fn broken_corpus_file_is_named_with_its_line() {
    let temp = tempfile::tempdir().unwrap();
    let corpus = temp.path().join("corpus");
    copy_corpus(&corpus);
    // Line 10 holds a heading without a title.
    let broken = "+++\ntitle = \"Broken\"\nslug = \"broken\"\nauthor = \"A\"\nyear = 2026\n+++\n\nSome text.\n\n##\n\nMore text.\n";
    std::fs::write(corpus.join("broken.md"), broken).unwrap();
    let output = guidebot(&corpus, &temp.path().join("index"))
        .args(["search", "google l4"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "a broken corpus must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.md:10"),
        "stderr names file:line: {stderr}"
    );

    // Broken front matter: the line of the TOML error.
    std::fs::write(
        corpus.join("broken.md"),
        "+++\ntitle = \"Broken\"\nslug = broken\n+++\n\ntext\n",
    )
    .unwrap();
    let output = guidebot(&corpus, &temp.path().join("index"))
        .arg("index")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.md:3"),
        "stderr names file:line: {stderr}"
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
    let output = guidebot(&corpus, &index)
        .args(["search", "sourdough proofing baskets", "--json"])
        .output()
        .unwrap();
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
