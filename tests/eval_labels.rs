//! The eval sets' labels are checked against the guides themselves: every expected section exists
//! in its guide and every expected fact is written in one of those sections. A wrong label makes a
//! figure lie in either direction, so a typo in a new question set fails here, before it is scored.

use guidebot::corpus::{collapse_whitespace, Corpus};
use guidebot::eval::EvalSet;
use std::path::{Path, PathBuf};

/// The bundled guide and every test corpus, as `eval --with` loads them.
fn every_guide() -> Corpus {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut extra: Vec<PathBuf> = std::fs::read_dir(root.join("tests/corpora"))
        .expect("tests/corpora is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir())
        .collect();
    extra.sort();
    Corpus::load_dirs(&root.join("corpus"), &extra).expect("the guides load")
}

fn normalised(text: &str) -> String {
    collapse_whitespace(&text.to_lowercase())
}

/// What is wrong with one labelled question (sections of `guide`, or of any guide when the set
/// names none, and facts each written in one of those sections).
fn label_problems(
    corpus: &Corpus,
    guide: Option<&str>,
    id: &str,
    sections: &[String],
    facts: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    if sections.is_empty() {
        problems.push(format!("{id}: no expected section"));
    }
    let guides: Vec<_> = match guide {
        Some(slug) => match corpus.guide(slug) {
            Some(found) => vec![found],
            None => return vec![format!("{id}: no guide `{slug}`")],
        },
        None => corpus.guides.iter().collect(),
    };
    let mut texts = Vec::new();
    for section in sections {
        let mut found = false;
        for guide in &guides {
            if guide.section(section).is_some() {
                found = true;
                texts.extend(
                    guide
                        .passages_of(section)
                        .map(|p| normalised(&p.full_text())),
                );
            }
        }
        if !found {
            problems.push(format!("{id}: no section `{section}`"));
        }
    }
    for fact in facts {
        let fact = normalised(fact);
        if !texts.iter().any(|text| text.contains(&fact)) {
            problems.push(format!(
                "{id}: fact `{fact}` is in none of its sections' passages"
            ));
        }
    }
    problems
}

#[test]
fn every_eval_label_names_real_sections_and_facts_written_in_them() {
    let corpus = every_guide();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/eval");
    let mut sets: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("tests/eval is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    sets.sort();
    assert!(sets.len() >= 10, "eval sets found: {sets:?}");
    let mut problems = Vec::new();
    let mut labelled = 0usize;
    for path in &sets {
        let set = EvalSet::load(path).unwrap_or_else(|error| panic!("{error}"));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        for question in &set.questions {
            let guide = set.guide_of(question);
            let found = label_problems(
                &corpus,
                guide,
                &question.id,
                &question.sections,
                &question.facts,
            );
            problems.extend(
                found
                    .into_iter()
                    .map(|problem| format!("{name}: {problem}")),
            );
            labelled += 1;
        }
        for conversation in &set.conversations {
            let found = label_problems(
                &corpus,
                set.guide.as_deref(),
                &conversation.id,
                &conversation.sections,
                &conversation.facts,
            );
            problems.extend(
                found
                    .into_iter()
                    .map(|problem| format!("{name}: {problem}")),
            );
            labelled += 1;
        }
    }
    assert!(labelled >= 500, "only {labelled} labelled questions found");
    assert!(
        problems.is_empty(),
        "{} wrong labels:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_label_check_catches_a_missing_section_and_an_unwritten_fact() {
    let corpus = every_guide();
    let guide = corpus.guides[0].meta.slug.clone();
    let section = corpus.guides[0].sections[1].id.clone();
    let sections = vec![section.clone(), "no-such-section".to_string()];
    let facts = vec!["a fact no guide states, 12345".to_string()];
    let problems = label_problems(&corpus, Some(&guide), "q", &sections, &facts);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("no section `no-such-section`"));
    assert!(problems[1].contains("in none of its sections"));
    assert_eq!(
        label_problems(&corpus, Some("no-such-guide"), "q", &sections, &[]),
        vec!["q: no guide `no-such-guide`".to_string()]
    );
}
