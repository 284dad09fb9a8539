//! The bundled corpus: a faithful transcription of the seed guide, and loader errors that name the file.

use guidebot::corpus::{Corpus, CorpusError, PassageKind};
use guidebot::eval::SourceTexts;
use std::path::Path;

fn bundled() -> Corpus {
    Corpus::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .as_path(),
    )
    .expect("bundled corpus loads")
}

/// Every line of the seed text must be in the corpus exactly as written: headings, paragraphs, bullets
/// and sources. Table rows lost their separators in the seed, so their cells joined must give the line.
#[test]
fn the_markdown_guide_keeps_every_line_of_the_seed() {
    let corpus = bundled();
    let guide = &corpus.guides[0];
    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-guide.txt"),
    )
    .unwrap();
    let mut haystack: Vec<String> = guide.passages.iter().map(|p| p.text.clone()).collect();
    haystack.extend(guide.sections.iter().map(|s| s.heading.clone()));
    haystack.push(guide.meta.title.clone());
    haystack.extend(guide.meta.publisher.clone());
    let table = &guide.tables[0];
    let joined_rows: Vec<String> = std::iter::once(&table.header)
        .chain(table.rows.iter().map(|row| &row.cells))
        .map(|cells| cells.concat())
        .collect();
    let mut checked = 0;
    for raw in seed.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let line = line.trim_start_matches("• ");
        let line = match line.split_once(". ") {
            Some((number, rest)) if number.chars().all(|c| c.is_ascii_digit()) => rest,
            _ => line,
        };
        let found = haystack.iter().any(|text| text.contains(line))
            || joined_rows.iter().any(|row| row == line);
        assert!(found, "seed line missing from the corpus: {line}");
        checked += 1;
    }
    assert!(checked > 50, "only {checked} lines checked");
}

#[test]
fn the_comp_table_has_the_four_columns_and_eight_rows() {
    let corpus = bundled();
    let table = &corpus.guides[0].tables[0];
    assert_eq!(table.header, ["Company", "Level", "Base", "Total comp"]);
    assert_eq!(table.rows.len(), 8);
    assert_eq!(
        table.rows[0].cells,
        ["Meta DS", "E4", "$170k–$220k", "$300k–$420k"]
    );
    assert_eq!(table.rows[2].cells[3], "$380k–$580k (single-band)");
    assert_eq!(table.rows[7].cells[2], "$170k–$220k (remote-friendly)");
    assert_eq!(table.section_id, "compensation-the-real-bands-at-mid");
}

#[test]
fn sections_have_stable_ids_and_paths() {
    let corpus = bundled();
    let guide = &corpus.guides[0];
    let ids: Vec<&str> = guide.sections.iter().map(|s| s.id.as_str()).collect();
    for expected in [
        "in-short",
        "key-takeaways",
        "what-companies-expect-at-mid",
        "compensation-the-real-bands-at-mid",
        "whats-the-dominant-llm-stack-at-mid-in-2026",
        "sources",
    ] {
        assert!(
            ids.contains(&expected),
            "missing section {expected}: {ids:?}"
        );
    }
    let faq = guide
        .section("should-i-learn-rust-or-c-at-mid-for-ml")
        .unwrap();
    assert_eq!(faq.heading_path[1], "Frequently asked questions");
    assert_eq!(faq.level, 3);
}

#[test]
fn list_items_keep_their_lead_in_and_rows_keep_their_header() {
    let corpus = bundled();
    let item = corpus
        .passages()
        .find(|p| p.kind == PassageKind::ListItem && p.text.starts_with("Scope ownership."))
        .unwrap();
    assert_eq!(
        item.context.as_deref(),
        Some("The day-to-day shifts from junior in three concrete ways:")
    );
    let row = corpus
        .passages()
        .find(|p| p.kind == PassageKind::TableRow && p.text.contains("Google MLE"))
        .unwrap();
    // The row as written in the guide; its header is its context's last line.
    assert_eq!(row.text, "Google MLE | L4 | $170k–$220k | $300k–$430k");
    assert_eq!(
        row.context
            .as_deref()
            .and_then(|context| context.lines().last()),
        Some("Company | Level | Base | Total comp")
    );
}

#[test]
fn quotes_are_checked_verbatim() {
    let corpus = bundled();
    assert!(corpus.contains_quote("Google L4 MLE $300k–$430k"));
    assert!(!corpus.contains_quote("Google L4 MLE $300k–$999k"));
    assert!(!corpus.contains_quote("   "));
}

fn write_guide(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn broken_files_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write_guide(
        dir.path(),
        "a.md",
        "+++\ntitle = \"A\"\nslug = \"a\"\nauthor = \"x\"\nyear = \"nope\"\n+++\n\n# A\n\ntext\n",
    );
    let error = Corpus::load(dir.path()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("a.md:5:"), "{message}");

    write_guide(
        dir.path(),
        "a.md",
        "+++\ntitle = \"A\"\nslug = \"a\"\nauthor = \"x\"\nyear = 2026\n",
    );
    let message = Corpus::load(dir.path()).unwrap_err().to_string();
    assert!(message.contains("never closed"), "{message}");

    std::fs::write(
        dir.path().join("a.md"),
        b"+++\ntitle = \"A\"\nslug = \"a\"\nauthor = \"x\"\nyear = 2026\n+++\n\nok\n\xff\xfe\n",
    )
    .unwrap();
    let message = Corpus::load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("a.md:9:") && message.contains("UTF-8"),
        "{message}"
    );

    write_guide(dir.path(), "a.md", "+++\ntitle = \"A\"\nslug = \"a\"\nauthor = \"x\"\nyear = 2026\n+++\n\n| a | b |\n| - | - |\n| 1 | 2 | 3 |\n");
    // pulldown-cmark drops extra cells, so this table is valid; a guide with no text is not.
    assert!(Corpus::load(dir.path()).is_ok());
    write_guide(
        dir.path(),
        "a.md",
        "+++\ntitle = \"A\"\nslug = \"a\"\nauthor = \"x\"\nyear = 2026\n+++\n\n",
    );
    let message = Corpus::load(dir.path()).unwrap_err().to_string();
    assert!(message.contains("no text"), "{message}");
}

#[test]
fn duplicate_slugs_and_empty_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Corpus::load(dir.path()),
        Err(CorpusError::NoGuides { .. })
    ));
    let guide = "+++\ntitle = \"A\"\nslug = \"a\"\nauthor = \"x\"\nyear = 2026\n+++\n\ntext\n";
    write_guide(dir.path(), "a.md", guide);
    write_guide(dir.path(), "b.md", guide);
    assert!(matches!(
        Corpus::load(dir.path()),
        Err(CorpusError::DuplicateSlug { .. })
    ));
    assert!(matches!(
        Corpus::load(&dir.path().join("missing")),
        Err(CorpusError::Io { .. })
    ));
}

#[test]
fn the_fingerprint_changes_with_any_file() {
    let dir = tempfile::tempdir().unwrap();
    write_guide(
        dir.path(),
        "a.md",
        "+++\ntitle = \"A\"\nslug = \"a\"\nauthor = \"x\"\nyear = 2026\n+++\n\ntext\n",
    );
    let first = Corpus::load(dir.path()).unwrap().fingerprint;
    assert_eq!(first, Corpus::load(dir.path()).unwrap().fingerprint);
    std::fs::write(
        dir.path().join("vocabulary.toml"),
        "[[synonyms]]\nterms = [\"a\", \"b\"]\n",
    )
    .unwrap();
    assert_ne!(first, Corpus::load(dir.path()).unwrap().fingerprint);
}

fn load_one(text: &str) -> Corpus {
    let dir = tempfile::tempdir().unwrap();
    write_guide(dir.path(), "my-guide.md", text);
    Corpus::load(dir.path()).expect("the guide loads")
}

#[test]
fn a_guide_without_front_matter_takes_its_title_from_the_first_heading_and_says_so() {
    let corpus = load_one("Intro line.\n\n# The Real Title\n\nSome text here.\n");
    let guide = &corpus.guides[0];
    assert_eq!(guide.meta.title, "The Real Title");
    assert_eq!(guide.meta.slug, "my-guide");
    assert_eq!(guide.meta.as_of(), "undated");
    assert_eq!(corpus.warnings.len(), 1);
    assert!(
        corpus.warnings[0].contains("my-guide.md:1:") && corpus.warnings[0].contains("title"),
        "{:?}",
        corpus.warnings
    );
}

#[test]
fn tables_with_empty_headers_load_and_odd_rows_are_skipped_with_a_warning() {
    let corpus = load_one(
        "# T\n\n| | |\n| --- | --- |\n| Step 1 | Problem formulation |\n| Step 2 | Metrics |\n| | |\n",
    );
    let rows: Vec<&str> = corpus
        .passages()
        .filter(|p| p.kind == PassageKind::TableRow)
        .map(|p| p.text.as_str())
        .collect();
    assert_eq!(rows, ["Step 1 | Problem formulation", "Step 2 | Metrics"]);
}

#[test]
fn html_comments_are_never_indexed() {
    let corpus = load_one(
        "# T\n\nVisible text.\n\n<!-- hidden block\nstill hidden\n-->\n\nMore <!-- inline hidden --> text.\n",
    );
    for passage in corpus.passages() {
        assert!(!passage.text.contains("hidden"), "{:?}", passage.text);
    }
    assert!(corpus.passages().any(|p| p.text == "More text."));
}

#[test]
fn a_list_item_keeps_its_children_and_never_stands_alone() {
    let corpus = load_one(
        "# T\n\nCandidate generation options:\n\n- Matrix Factorization\n  - learns user and item embeddings from the interaction matrix\n  - cheap to serve with a nearest neighbour index\n- Two-tower networks\n  - a user tower and an item tower trained on positive pairs and sampled negatives\n",
    );
    let passage = corpus
        .passages()
        .find(|p| p.text.contains("Matrix Factorization"))
        .unwrap();
    assert!(
        passage.text.contains("learns user and item embeddings"),
        "{:?}",
        passage.text
    );
    assert_eq!(
        passage.context.as_deref(),
        Some("Candidate generation options:")
    );
    assert!(!corpus.passages().any(|p| p.text == "Matrix Factorization"));
}

#[test]
fn footnote_markers_never_show_and_their_text_joins_the_passage() {
    let corpus =
        load_one("# T\n\nComp is high at labs.[^47]\n\n[^47]: Per levels.fyi reports from 2026.\n");
    let passage = corpus
        .passages()
        .find(|p| p.text.contains("Comp is high"))
        .unwrap();
    assert!(!passage.text.contains("[^"), "{:?}", passage.text);
    assert!(passage.text.contains("Per levels.fyi reports from 2026."));
    assert_eq!(corpus.passages().count(), 1);
}

#[test]
fn a_bold_question_line_heads_the_answer_below_it() {
    let corpus = load_one(
        "# Theory\n\n## Regularization\n\n**What is regularization? 👶**\n\nRegularization adds a penalty to the loss.\n\n- L1 gives sparse weights\n- L2 shrinks weights\n",
    );
    let passages: Vec<_> = corpus.passages().collect();
    assert!(passages
        .iter()
        .all(|p| !p.text.contains("What is regularization")));
    assert!(passages
        .iter()
        .all(|p| p.subheading.as_deref() == Some("What is regularization? 👶")));
    assert_eq!(passages[0].section_id, "regularization");
}

#[test]
fn long_paragraphs_are_split_at_sentence_ends() {
    let sentence = "This sentence has exactly ten words in it, you see. ";
    let corpus = load_one(&format!("# T\n\n{}\n", sentence.repeat(40)));
    let passages: Vec<_> = corpus.passages().collect();
    assert!(passages.len() > 1);
    for passage in passages {
        let words = passage.text.split_whitespace().count();
        assert!(words <= 150, "{words} words");
        assert!(passage.text.ends_with("see."));
    }
}

/// Every line of every passage of every corpus the eval uses is verbatim in its Markdown source
/// (inline markup removed): quotes are cut from these lines, so they are verbatim too.
#[test]
fn every_passage_line_of_every_corpus_is_verbatim_in_its_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        "corpus",
        "tests/corpora/ml-interviews-alirezadir",
        "tests/corpora/ds-interviews-grigorev",
    ] {
        let corpus = Corpus::load(&root.join(dir)).expect("corpus loads");
        let sources = SourceTexts::of(&corpus);
        let mut lines = 0;
        for passage in corpus.passages() {
            if passage.kind == PassageKind::Code {
                continue;
            }
            for line in passage.text.lines() {
                lines += 1;
                assert!(
                    sources.is_verbatim(&passage.guide_slug, line),
                    "{dir}: not verbatim in {}: {line:?}",
                    passage.guide_slug
                );
            }
        }
        assert!(lines > 40, "{dir}: only {lines} lines");
    }
}

#[test]
fn a_pipe_named_like_a_guide_is_skipped_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    write_guide(dir.path(), "real.md", "# Real\n\nSome text.\n");
    let fifo = dir.path().join("pipe.md");
    let path = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path; the result is checked.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    // Opening the pipe would block forever; the load must finish and say why it skipped it.
    let corpus = Corpus::load(dir.path()).expect("the corpus loads");
    assert_eq!(corpus.guides.len(), 1);
    assert!(
        corpus
            .warnings
            .iter()
            .any(|w| w.contains("pipe.md") && w.contains("not a regular file")),
        "{:?}",
        corpus.warnings
    );
}

#[test]
fn a_symlink_to_a_device_is_skipped_and_an_oversized_guide_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_guide(dir.path(), "real.md", "# Real\n\nSome text.\n");
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.md")).unwrap();
    let corpus = Corpus::load(dir.path()).expect("the corpus loads");
    assert_eq!(corpus.guides.len(), 1);
    assert!(corpus.warnings.iter().any(|w| w.contains("zero.md")));

    write_guide(
        dir.path(),
        "big.md",
        &format!("# Big\n\n{}\n", "word ".repeat(4000)),
    );
    let limits = guidebot::corpus::LoadLimits {
        max_file_bytes: 8 * 1024,
        ..Default::default()
    };
    let error = Corpus::load_with(dir.path(), &[], &limits).unwrap_err();
    assert!(matches!(error, CorpusError::TooLarge { .. }), "{error}");
    assert!(error.to_string().contains("big.md"), "{error}");
}

/// Issue 14 (memory unbounded on big inputs): besides each file's cap, the corpus as a whole is
/// capped. Guides each well under the file limit but together over a small corpus limit are an
/// error giving the total, the limit and the setting to raise; at the limit they load.
#[test]
fn guides_over_the_corpus_size_limit_together_are_an_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("# Guide\n\n{}\n", "Some words here. ".repeat(100));
    for name in ["a.md", "b.md", "c.md"] {
        write_guide(dir.path(), name, &text);
    }
    let total = 3 * text.len() as u64;
    let limits = |max_total_bytes| guidebot::corpus::LoadLimits {
        max_file_bytes: 1 << 20,
        max_total_bytes,
    };
    let error = Corpus::load_with(dir.path(), &[], &limits(total - 1)).unwrap_err();
    assert!(
        matches!(error, CorpusError::CorpusTooLarge { size, .. } if size == total),
        "{error}"
    );
    let message = error.to_string();
    for wanted in [
        &total.to_string(),
        &(total - 1).to_string(),
        "paths.max_corpus_bytes",
        "GUIDEBOT_MAX_CORPUS_BYTES",
    ] {
        assert!(message.contains(wanted), "{wanted:?} in {message}");
    }
    let corpus = Corpus::load_with(dir.path(), &[], &limits(total)).expect("at the limit");
    assert_eq!(corpus.guides.len(), 3);
    // The default leaves room for every bundled corpus.
    assert_eq!(
        guidebot::corpus::LoadLimits::default().max_total_bytes,
        64 * 1024 * 1024
    );
}

#[test]
fn a_huge_paragraph_without_sentence_ends_becomes_bounded_passages() {
    let corpus = load_one(&format!(
        "# T\n\n{}\n\n- {}\n",
        "word ".repeat(3000),
        "item ".repeat(2000)
    ));
    let passages: Vec<_> = corpus.passages().collect();
    assert!(passages.len() >= 40, "{}", passages.len());
    for passage in passages {
        let words = passage.text.split_whitespace().count();
        assert!(words <= 150, "a passage of {words} words");
    }
}
