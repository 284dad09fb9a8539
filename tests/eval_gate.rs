//! The eval gates CI: `guidebot eval --answers --json` over the dev and held-out sets, with the
//! bundled guide alone and with every test corpus indexed beside it, must stay above floors set
//! just under the measured figures (BENCHMARKS.md, "Answer quality"). Every quote must be verbatim.
//!
//! Floors are regression guards, not targets: held-out figures are measured, never tuned on (see
//! tests/eval/README.md). A real regression (a dropped section, a broken analyzer, a looser gate)
//! falls through them; a harmless tie does not.

use std::process::Command;

/// The floors of one question set.
struct Floors {
    set: &'static str,
    hit_at_1: f64,
    fact_at_3: f64,
    /// Off-topic questions the answer refuses.
    off_topic_refusal: f64,
    /// At most this share of answerable questions refused.
    answerable_refusal: f64,
    facts_in_answer: f64,
    right_guide_first: f64,
}

const BUNDLED_ALONE: &[Floors] = &[
    Floors {
        set: "tests/eval/dev.toml",
        hit_at_1: 0.94,
        fact_at_3: 0.91,
        off_topic_refusal: 0.98,
        answerable_refusal: 0.03,
        facts_in_answer: 0.83,
        right_guide_first: 1.00,
    },
    Floors {
        set: "tests/eval/dev2.toml",
        hit_at_1: 0.83,
        fact_at_3: 0.87,
        off_topic_refusal: 0.82,
        answerable_refusal: 0.15,
        facts_in_answer: 0.73,
        right_guide_first: 1.00,
    },
    Floors {
        set: "tests/eval/dev3.toml",
        hit_at_1: 0.80,
        fact_at_3: 0.82,
        off_topic_refusal: 0.90,
        answerable_refusal: 0.15,
        facts_in_answer: 0.64,
        right_guide_first: 1.00,
    },
    Floors {
        set: "tests/eval/heldout-v2.toml",
        hit_at_1: 0.87,
        fact_at_3: 0.87,
        off_topic_refusal: 0.93,
        answerable_refusal: 0.13,
        facts_in_answer: 0.72,
        right_guide_first: 1.00,
    },
];

const ALL_GUIDES: &[Floors] = &[
    Floors {
        set: "tests/eval/dev.toml",
        hit_at_1: 0.90,
        fact_at_3: 0.87,
        off_topic_refusal: 0.94,
        answerable_refusal: 0.03,
        facts_in_answer: 0.82,
        right_guide_first: 0.92,
    },
    Floors {
        set: "tests/eval/dev2.toml",
        hit_at_1: 0.74,
        fact_at_3: 0.79,
        off_topic_refusal: 0.79,
        answerable_refusal: 0.10,
        facts_in_answer: 0.75,
        right_guide_first: 0.81,
    },
    Floors {
        set: "tests/eval/dev3.toml",
        hit_at_1: 0.70,
        fact_at_3: 0.68,
        off_topic_refusal: 0.87,
        answerable_refusal: 0.10,
        facts_in_answer: 0.58,
        right_guide_first: 0.79,
    },
    Floors {
        set: "tests/eval/heldout-v2.toml",
        hit_at_1: 0.76,
        fact_at_3: 0.79,
        off_topic_refusal: 0.81,
        answerable_refusal: 0.08,
        facts_in_answer: 0.68,
        right_guide_first: 0.83,
    },
    Floors {
        set: "tests/eval/dev-ml-interviews-alirezadir.toml",
        hit_at_1: 0.54,
        fact_at_3: 0.63,
        off_topic_refusal: 0.85,
        answerable_refusal: 0.18,
        facts_in_answer: 0.39,
        right_guide_first: 0.64,
    },
    Floors {
        set: "tests/eval/dev2-ml-interviews-alirezadir.toml",
        hit_at_1: 0.49,
        fact_at_3: 0.61,
        off_topic_refusal: 0.70,
        answerable_refusal: 0.14,
        facts_in_answer: 0.36,
        right_guide_first: 0.64,
    },
    Floors {
        set: "tests/eval/dev3-ml-interviews-alirezadir.toml",
        hit_at_1: 0.47,
        fact_at_3: 0.55,
        off_topic_refusal: 0.70,
        answerable_refusal: 0.23,
        facts_in_answer: 0.27,
        right_guide_first: 0.60,
    },
    Floors {
        set: "tests/eval/heldout-v2-ml-interviews-alirezadir.toml",
        hit_at_1: 0.55,
        fact_at_3: 0.64,
        off_topic_refusal: 0.88,
        answerable_refusal: 0.17,
        facts_in_answer: 0.42,
        right_guide_first: 0.68,
    },
    Floors {
        set: "tests/eval/dev-ds-interviews-grigorev.toml",
        hit_at_1: 0.94,
        fact_at_3: 0.73,
        off_topic_refusal: 0.44,
        answerable_refusal: 0.06,
        facts_in_answer: 0.71,
        right_guide_first: 1.00,
    },
    Floors {
        set: "tests/eval/dev2-ds-interviews-grigorev.toml",
        hit_at_1: 0.87,
        fact_at_3: 0.70,
        off_topic_refusal: 0.48,
        answerable_refusal: 0.13,
        facts_in_answer: 0.67,
        right_guide_first: 0.95,
    },
    Floors {
        set: "tests/eval/dev3-ds-interviews-grigorev.toml",
        hit_at_1: 0.90,
        fact_at_3: 0.70,
        off_topic_refusal: 0.98,
        answerable_refusal: 0.19,
        facts_in_answer: 0.58,
        right_guide_first: 0.95,
    },
    Floors {
        set: "tests/eval/heldout-v2-ds-interviews-grigorev.toml",
        hit_at_1: 0.89,
        fact_at_3: 0.78,
        off_topic_refusal: 0.87,
        answerable_refusal: 0.10,
        facts_in_answer: 0.70,
        right_guide_first: 0.97,
    },
];

const TEST_CORPORA: &[&str] = &[
    "tests/corpora/ml-interviews-alirezadir",
    "tests/corpora/ds-interviews-grigorev",
];

/// Runs `guidebot eval --answers --json` with `args` (extractive answers: the gate must not
/// depend on a network or a key) over a fresh index, and returns its report.
fn eval_report(args: &[&str]) -> serde_json::Value {
    let index = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_guidebot"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--index")
        .arg(index.path())
        .args(["eval", "--answers", "--json"])
        .args(args)
        .env_remove("GUIDEBOT_LLM_PROVIDER")
        .output()
        .expect("guidebot runs");
    assert!(
        output.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// Runs `guidebot eval` over `floors`' sets with the given extra guide folders and checks them.
fn gate(with: &[&str], floors: &[Floors]) {
    let mut args = Vec::new();
    for dir in with {
        args.extend(["--with", dir]);
    }
    for set in floors {
        args.extend(["--questions", set.set]);
    }
    let report = eval_report(&args);
    let sets = report["sets"].as_array().expect("sets");
    assert_eq!(sets.len(), floors.len());
    let mut failures = Vec::new();
    for (set, floor) in sets.iter().zip(floors) {
        assert_eq!(set["set"], floor.set);
        let ours = &set["guidebot"];
        let retrieval = &ours["retrieval"];
        let answers = &ours["answers"];
        let metric = |value: &serde_json::Value, name: &str| {
            value[name]
                .as_f64()
                .unwrap_or_else(|| panic!("{}: missing {name}", floor.set))
        };
        assert!(
            retrieval["questions"].as_u64().unwrap_or(0) >= 40,
            "{}: too few questions",
            floor.set
        );
        assert!(
            retrieval["off_topic_questions"].as_u64().unwrap_or(0) >= 10,
            "{}: too few off-topic questions",
            floor.set
        );
        assert_eq!(answers["mode"], "extractive");
        let checks = [
            (
                "hit_at_1",
                metric(retrieval, "hit_at_1"),
                floor.hit_at_1,
                true,
            ),
            (
                "fact_at_3",
                metric(retrieval, "fact_at_3"),
                floor.fact_at_3,
                true,
            ),
            (
                "right_guide_first",
                metric(retrieval, "right_guide_first"),
                floor.right_guide_first,
                true,
            ),
            (
                "off_topic_refusal",
                metric(answers, "off_topic_refusal"),
                floor.off_topic_refusal,
                true,
            ),
            (
                "answerable_refusal",
                metric(answers, "answerable_refusal"),
                floor.answerable_refusal,
                false,
            ),
            (
                "facts_in_answer",
                metric(answers, "facts_in_answer"),
                floor.facts_in_answer,
                true,
            ),
            (
                "verbatim_quotes",
                metric(answers, "verbatim_quotes"),
                1.0,
                true,
            ),
        ];
        for (name, value, limit, at_least) in checks {
            let ok = if at_least {
                value >= limit
            } else {
                value <= limit
            };
            if !ok {
                failures.push(format!(
                    "{} {name} = {value:.3} ({} {limit})",
                    floor.set,
                    if at_least { "floor" } else { "ceiling" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "below the floors: {failures:#?}");
}

#[test]
fn the_bundled_guide_alone_stays_above_its_floors() {
    gate(&[], BUNDLED_ALONE);
}

#[test]
fn every_guide_indexed_together_stays_above_its_floors() {
    gate(TEST_CORPORA, ALL_GUIDES);
}

/// The conversation set: follow-ups read with their history must stay above floors set just under
/// the measured figures (BENCHMARKS.md, "Conversations"), and clearly above the same follow-ups
/// asked alone (what guidebot did before it kept history).
#[test]
fn follow_ups_with_history_stay_above_their_floors() {
    let report = eval_report(&[
        "--no-baseline",
        "--questions",
        "tests/eval/conversations.toml",
    ]);
    let conversations = &report["sets"][0]["conversations"];
    let metric = |name: &str| {
        conversations[name]
            .as_f64()
            .unwrap_or_else(|| panic!("missing {name} in {conversations}"))
    };
    assert!(
        conversations["conversations"].as_u64().unwrap_or(0) >= 30,
        "too few conversations"
    );
    let floors = [
        ("hit_at_1", 0.92),
        ("hit_at_3", 0.94),
        ("fact_at_3", 0.97),
        ("facts_in_answer", 0.83),
        ("verbatim_quotes", 1.0),
    ];
    let mut failures = Vec::new();
    for (name, floor) in floors {
        let value = metric(name);
        if value < floor {
            failures.push(format!("{name} = {value:.3} (floor {floor})"));
        }
    }
    if metric("refusal") > 0.09 {
        failures.push(format!("refusal = {:.3} (ceiling 0.09)", metric("refusal")));
    }
    // History must matter: the same follow-ups asked alone find the right section far less often
    // and carry fewer facts (alone, an answer of a few sentences still carries some by chance).
    if metric("hit_at_1") < metric("alone_hit_at_1") + 0.2
        || metric("facts_in_answer") < metric("alone_facts_in_answer") + 0.1
    {
        failures.push(format!(
            "history adds too little: hit@1 {:.3} with it, {:.3} alone; facts {:.3} / {:.3}",
            metric("hit_at_1"),
            metric("alone_hit_at_1"),
            metric("facts_in_answer"),
            metric("alone_facts_in_answer")
        ));
    }
    assert!(failures.is_empty(), "below the floors: {failures:#?}");
}
