//! The eval gates CI: `guidebot eval --answers --json` on the bundled guide and question set must stay
//! above floors set from measurements (see BENCHMARKS.md and README "Eval").

use std::process::Command;

/// Floors, a little under the measured figures so harmless ties do not flake; a real regression
/// (a dropped section, a broken analyzer, a looser relevance gate) falls through them.
const MIN_HIT_AT_1: f64 = 0.95;
const MIN_HIT_AT_3: f64 = 0.99;
const MIN_MRR: f64 = 0.97;
const MIN_FACT_AT_3: f64 = 0.90;
const MIN_OFF_TOPIC_REJECTION: f64 = 1.0;
const MAX_ANSWERABLE_FALSE_REJECTION: f64 = 0.01;
const MIN_FACTS_IN_ANSWER: f64 = 0.72;

#[test]
fn eval_metrics_stay_above_their_floors() {
    let root = env!("CARGO_MANIFEST_DIR");
    let index = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_guidebot"))
        .current_dir(root)
        .args(["--index"])
        .arg(index.path())
        .args([
            "eval",
            "--answers",
            "--json",
            "--set",
            "tests/eval/dev.toml",
        ])
        // Extractive answers: the gate must not depend on a network or a key.
        .env_remove("GUIDEBOT_LLM_PROVIDER")
        .output()
        .expect("guidebot runs");
    assert!(
        output.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    let set = &report["sets"][0]["guidebot"];
    let retrieval = &set["retrieval"];
    let metric = |name: &str| {
        retrieval[name]
            .as_f64()
            .unwrap_or_else(|| panic!("missing {name}"))
    };
    assert!(retrieval["questions"].as_u64().unwrap() >= 80);
    assert!(retrieval["off_topic_questions"].as_u64().unwrap() >= 15);
    let failures: Vec<String> = [
        ("hit_at_1", metric("hit_at_1") >= MIN_HIT_AT_1),
        ("hit_at_3", metric("hit_at_3") >= MIN_HIT_AT_3),
        ("mrr", metric("mrr") >= MIN_MRR),
        ("fact_at_3", metric("fact_at_3") >= MIN_FACT_AT_3),
        (
            "off_topic_rejection",
            metric("off_topic_rejection") >= MIN_OFF_TOPIC_REJECTION,
        ),
        (
            "answerable_false_rejection",
            metric("answerable_false_rejection") <= MAX_ANSWERABLE_FALSE_REJECTION,
        ),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(name, _)| format!("{name} = {}", retrieval[name]))
    .collect();
    assert!(
        failures.is_empty(),
        "retrieval below its floors: {failures:?}"
    );

    let answers = &set["answers"];
    assert_eq!(answers["mode"], "extractive");
    assert_eq!(
        answers["verbatim_quotes"].as_f64(),
        Some(1.0),
        "every quote must be verbatim"
    );
    assert_eq!(answers["off_topic_refusal"].as_f64(), Some(1.0));
    let facts = answers["facts_in_answer"].as_f64().unwrap();
    assert!(
        facts >= MIN_FACTS_IN_ANSWER,
        "facts_in_answer {facts} < {MIN_FACTS_IN_ANSWER}"
    );
}
