//! Compensation records and lookup: every row of the bundled guide's table against the guide's own
//! figures, forgiving names, filters, comparisons, autocomplete, rendering, JSON, and other corpora.

use guidebot::bot::render::{fit_choices, MAX_CHOICES, MAX_CHOICE_LEN};
use guidebot::comp::{
    render::display_width, render_aligned_table, render_rows, source_footer, CompData, CompLookup,
    CompQuery, CompRecord, MoneyRange, Origin,
};
use guidebot::corpus::Corpus;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_at(relative: &str) -> Corpus {
    Corpus::load(&root().join(relative)).expect("corpus loads")
}

fn bundled() -> (Corpus, CompData) {
    let corpus = corpus_at("corpus");
    let data = CompData::from_corpus(&corpus).expect("comp records build");
    (corpus, data)
}

fn query(companies: &[&str], level: Option<&str>, role: Option<&str>) -> CompQuery {
    CompQuery {
        companies: companies.iter().map(|c| c.to_string()).collect(),
        level: level.map(str::to_string),
        role: role.map(str::to_string),
    }
}

fn ask(data: &CompData, companies: &[&str]) -> CompLookup {
    data.lookup(&query(companies, None, None))
}

fn range(min: u64, max: Option<u64>, open_ended: bool, text: &str) -> MoneyRange {
    MoneyRange {
        min,
        max,
        open_ended,
        text: text.to_string(),
    }
}

fn table_rows(data: &CompData) -> Vec<&CompRecord> {
    data.records()
        .iter()
        .filter(|r| r.origin == Origin::Table)
        .collect()
}

/// (company, role, level, level cell, base, total, notes) for every row, as the guide writes them.
#[test]
fn every_row_of_the_bundled_table_matches_the_guide_exactly() {
    let (_, data) = bundled();
    type Expected = (
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
        MoneyRange,
        MoneyRange,
        Vec<&'static str>,
    );
    let expected: Vec<Expected> = vec![
        (
            "Meta",
            Some("DS"),
            "E4",
            "E4",
            range(170_000, Some(220_000), false, "$170k–$220k"),
            range(300_000, Some(420_000), false, "$300k–$420k"),
            vec![],
        ),
        (
            "Google",
            Some("MLE"),
            "L4",
            "L4",
            range(170_000, Some(220_000), false, "$170k–$220k"),
            range(300_000, Some(430_000), false, "$300k–$430k"),
            vec![],
        ),
        (
            "Netflix",
            Some("MLE"),
            "L5",
            "L5",
            range(310_000, Some(380_000), false, "$310k–$380k"),
            range(380_000, Some(580_000), false, "$380k–$580k"),
            vec!["single-band"],
        ),
        (
            "Anthropic",
            Some("MTS"),
            "MTS-3",
            "MTS-3 (mid)",
            range(300_000, Some(400_000), false, "$300k–$400k"),
            range(450_000, Some(700_000), true, "$450k–$700k+"),
            vec![],
        ),
        (
            "OpenAI",
            Some("MTS"),
            "MTS",
            "MTS (mid)",
            range(310_000, Some(420_000), false, "$310k–$420k"),
            range(500_000, Some(900_000), true, "$500k–$900k+"),
            vec!["heavy PPU"],
        ),
        (
            "Databricks",
            Some("MLE"),
            "L4",
            "L4",
            range(190_000, Some(250_000), false, "$190k–$250k"),
            range(310_000, Some(480_000), false, "$310k–$480k"),
            vec![],
        ),
        (
            "Scale AI",
            Some("MLE"),
            "mid",
            "mid MLE",
            range(210_000, Some(280_000), false, "$210k–$280k"),
            range(340_000, Some(560_000), false, "$340k–$560k"),
            vec![],
        ),
        (
            "Hugging Face",
            None,
            "mid",
            "mid",
            range(170_000, Some(220_000), false, "$170k–$220k"),
            range(240_000, Some(380_000), false, "$240k–$380k"),
            vec!["remote-friendly"],
        ),
    ];
    let rows = table_rows(&data);
    assert_eq!(rows.len(), expected.len());
    for (row, (company, role, level, level_text, base, total, notes)) in rows.iter().zip(expected) {
        assert_eq!(row.company, company);
        assert_eq!(row.role.as_deref(), role, "{company}");
        assert_eq!(row.level.as_deref(), Some(level), "{company}");
        assert_eq!(row.level_text, level_text, "{company}");
        assert_eq!(row.base.as_ref(), Some(&base), "{company}");
        assert_eq!(row.total.as_ref(), Some(&total), "{company}");
        assert_eq!(row.notes, notes, "{company}");
        assert_eq!(row.guide, "mid-level-ds-mle-2026");
        assert_eq!(row.section_id, "compensation-the-real-bands-at-mid");
        assert_eq!(row.heading, "Compensation: the real bands at mid");
        assert_eq!(row.as_of, "2026");
        assert_eq!(row.source, "levels.fyi 2026");
        assert!(row.path.ends_with("mid-level-ds-mle-guide-2026.md"));
    }
    // Lines are the rows' lines in the file.
    let text =
        std::fs::read_to_string(root().join("corpus/mid-level-ds-mle-guide-2026.md")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for row in rows {
        let line = lines[row.line - 1];
        assert!(line.starts_with("| "), "line {} is {line:?}", row.line);
        assert!(line.contains(&row.total.as_ref().unwrap().text));
    }
}

/// Every figure shown must be in the guide's text: quotes are verbatim passages, money texts appear in them.
#[test]
fn every_record_is_quoted_from_the_corpus() {
    let (corpus, data) = bundled();
    for record in data.records() {
        assert!(corpus.contains_quote(&record.quote), "{:?}", record.quote);
        for money in record.base.iter().chain(record.total.iter()) {
            assert!(
                record.quote.contains(&money.text),
                "{} not in {:?}",
                money.text,
                record.quote
            );
        }
    }
}

#[test]
fn prose_figures_with_a_company_or_tier_become_records() {
    let (_, data) = bundled();
    let prose: Vec<&CompRecord> = data
        .records()
        .iter()
        .filter(|r| r.origin == Origin::Prose)
        .collect();
    let summary: Vec<(String, Option<String>, String, String)> = prose
        .iter()
        .map(|r| {
            (
                r.company.clone(),
                r.level.clone(),
                r.total.as_ref().unwrap().text.clone(),
                r.section_id.clone(),
            )
        })
        .collect();
    let expect = |company: &str, level: Option<&str>, total: &str, section: &str| {
        (
            company.to_string(),
            level.map(str::to_string),
            total.to_string(),
            section.to_string(),
        )
    };
    assert_eq!(
        summary,
        vec![
            expect("FAANG-tier", None, "$250k–$380k", "in-short"),
            expect("AI-labs", None, "$400k–$700k+", "in-short"),
            expect("FAANG-tier", Some("mid"), "$250k–$380k", "key-takeaways"),
            expect("Meta", Some("E4"), "$300k–$420k", "key-takeaways"),
            expect("Google", Some("L4"), "$300k–$430k", "key-takeaways"),
            expect("Anthropic", Some("MTS-3"), "$450k–$700k+", "key-takeaways"),
        ]
    );
    for record in &prose {
        assert!(record.base.is_none(), "prose never invents a base");
    }
    // "OpenAI and Anthropic mid-level MTS commonly clears $500k+" names two companies: not a record.
    assert!(!prose
        .iter()
        .any(|r| r.total.as_ref().unwrap().text == "$500k+"));

    let faang = ask(&data, &["faang"]);
    assert_eq!(faang.rows.len(), 1, "the repeated FAANG band is shown once");
    let band = &faang.rows[0];
    assert_eq!(band.company, "FAANG-tier");
    assert_eq!(band.origin, Origin::Prose);
    assert_eq!(
        band.total,
        Some(range(250_000, Some(380_000), false, "$250k–$380k"))
    );
    assert_eq!(band.heading, "Key takeaways");
    assert_eq!(band.source, "levels.fyi 2026");
    assert_eq!(
        band.quote,
        "FAANG-tier mid total comp $250k–$380k per levels.fyi 2026"
    );

    let meta_prose = prose.iter().find(|r| r.company == "Meta").unwrap();
    assert_eq!(meta_prose.role.as_deref(), Some("DS"));
    assert_eq!(
        meta_prose.source,
        "levels.fyi/companies/facebook/salaries/data-scientist"
    );
    // A prose figure that repeats a table row is not listed twice.
    assert_eq!(ask(&data, &["meta"]).rows.len(), 1);
    assert_eq!(ask(&data, &["meta"]).rows[0].origin, Origin::Table);
    let labs = ask(&data, &["ai labs"]);
    assert_eq!(labs.rows.len(), 1);
    assert_eq!(labs.rows[0].notes, vec!["Anthropic MTS-3, OpenAI MTS-mid"]);
}

#[test]
fn aliases_from_the_data_file_find_companies() {
    let (_, data) = bundled();
    for (alias, company) in [
        ("fb", "Meta"),
        ("Facebook", "Meta"),
        ("goog", "Google"),
        ("alphabet", "Google"),
        ("oai", "OpenAI"),
        ("Open AI", "OpenAI"),
        ("hf", "Hugging Face"),
        ("huggingface", "Hugging Face"),
        ("scale", "Scale AI"),
        ("nflx", "Netflix"),
        ("ant", "Anthropic"),
        ("anthropic ai", "Anthropic"),
        ("db", "Databricks"),
        ("faang", "FAANG-tier"),
    ] {
        let answer = ask(&data, &[alias]);
        assert!(answer.not_found.is_empty(), "{alias}");
        assert!(!answer.rows.is_empty(), "{alias}");
        assert!(
            answer.rows.iter().all(|r| r.company == company),
            "{alias} → {company}"
        );
    }
}

#[test]
fn case_spacing_punctuation_and_small_typos_are_forgiven() {
    let (_, data) = bundled();
    for (typed, company) in [
        ("googel", "Google"),
        ("antropic", "Anthropic"),
        ("hugging-face", "Hugging Face"),
        ("HUGGING FACE", "Hugging Face"),
        ("  meta ", "Meta"),
        ("open-ai", "OpenAI"),
        ("scaleai", "Scale AI"),
        ("Netflx", "Netflix"),
        ("databrick", "Databricks"),
        ("openai", "OpenAI"),
    ] {
        let answer = ask(&data, &[typed]);
        assert!(answer.not_found.is_empty(), "{typed}: {answer:?}");
        assert_eq!(answer.rows[0].company, company, "{typed}");
    }
}

#[test]
fn level_and_role_filters_are_forgiving() {
    let (_, data) = bundled();
    let companies = |answer: &CompLookup| -> Vec<String> {
        answer.rows.iter().map(|r| r.company.clone()).collect()
    };
    for level in ["L4", "l4", "L-4", " l 4 "] {
        let answer = data.lookup(&query(&[], Some(level), None));
        assert_eq!(companies(&answer), vec!["Databricks", "Google"], "{level}");
    }
    for level in ["mts3", "MTS-3", "mts 3"] {
        let answer = data.lookup(&query(&["anthropic"], Some(level), None));
        assert_eq!(answer.rows.len(), 1, "{level}");
    }
    let mid = data.lookup(&query(&[], Some("mid"), None));
    assert_eq!(
        companies(&mid),
        vec![
            "OpenAI",
            "Anthropic",
            "Scale AI",
            "FAANG-tier",
            "Hugging Face"
        ]
    );
    assert_eq!(
        companies(&data.lookup(&query(&[], Some("mid-level"), None))),
        companies(&mid)
    );
    let ds = data.lookup(&query(&[], None, Some("data scientist")));
    assert_eq!(companies(&ds), vec!["Meta"]);
    let mle = data.lookup(&query(&[], None, Some("mle")));
    assert_eq!(
        companies(&mle),
        vec!["Netflix", "Scale AI", "Databricks", "Google"]
    );
    let both = data.lookup(&query(
        &["google", "netflix", "meta"],
        Some("l4"),
        Some("MLE"),
    ));
    assert_eq!(companies(&both), vec!["Google"]);
    assert_eq!(both.filtered_out, vec!["Netflix", "Meta"]);
    assert!(both.not_found.is_empty());
    assert!(both.suggestions.contains(&"Netflix L5 MLE".to_string()));
    // A name with its level typed along, as autocomplete values are.
    let typed = ask(&data, &["googel l4"]);
    assert_eq!(companies(&typed), vec!["Google"]);
    let none = ask(&data, &["meta e9"]);
    assert!(none.rows.is_empty());
    assert_eq!(none.filtered_out, vec!["Meta"]);
    assert_eq!(none.suggestions, vec!["Meta E4 DS"]);
}

#[test]
fn several_companies_are_compared_by_total_comp() {
    let (_, data) = bundled();
    let answer = ask(
        &data,
        &["hf", "openai", "meta", "Netflix", "anthropic", "google"],
    );
    let order: Vec<&str> = answer.rows.iter().map(|r| r.company.as_str()).collect();
    // Top of the range, highest first: $900k+, $700k+, $580k, $430k, $420k, $380k.
    assert_eq!(
        order,
        vec![
            "OpenAI",
            "Anthropic",
            "Netflix",
            "Google",
            "Meta",
            "Hugging Face"
        ]
    );
    // The same company twice (alias and name) is listed once; commas split a single entry.
    let twice = ask(&data, &["fb", "Meta"]);
    assert_eq!(twice.rows.len(), 1);
    let comma = ask(&data, &["meta, google"]);
    assert_eq!(comma.rows.len(), 2);
    assert_eq!(comma.rows[0].company, "Google");
}

#[test]
fn unknown_companies_are_reported_with_suggestions() {
    let (_, data) = bundled();
    let answer = ask(&data, &["Amazon", "meta", "Gogle Deepmind"]);
    assert_eq!(answer.not_found, vec!["Amazon", "Gogle Deepmind"]);
    assert_eq!(answer.rows.len(), 1);
    assert_eq!(answer.rows[0].company, "Meta");
    assert!(!answer.suggestions.is_empty());
    assert!(
        answer.suggestions.contains(&"Google".to_string()),
        "{:?}",
        answer.suggestions
    );
    let companies = data.companies();
    assert!(answer.suggestions.iter().all(|s| companies.contains(s)));
    // Nothing at all is invented for an unknown name.
    let nothing = ask(&data, &["xyzzy"]);
    assert!(nothing.rows.is_empty());
    assert_eq!(nothing.not_found, vec!["xyzzy"]);
    assert_eq!(nothing.suggestions.len(), 3);
}

#[test]
fn companies_lists_every_company_and_tier() {
    let (_, data) = bundled();
    assert_eq!(
        data.companies(),
        vec![
            "AI-labs",
            "Anthropic",
            "Databricks",
            "FAANG-tier",
            "Google",
            "Hugging Face",
            "Meta",
            "Netflix",
            "OpenAI",
            "Scale AI"
        ]
    );
}

#[test]
fn autocomplete_matches_prefixes_and_stays_within_discords_limits() {
    let (_, data) = bundled();
    // What Discord is sent: the ranked choices fitted to its limits by the renderer.
    let all = fit_choices(data.autocomplete("").into_iter().map(|c| (c.name, c.value)));
    assert!(all.len() <= MAX_CHOICES);
    for company in data.companies() {
        assert!(all.iter().any(|(_, value)| *value == company), "{company}");
    }
    assert!(all.iter().any(|(_, value)| value == "Meta E4 DS"));
    for choice in &all {
        assert!(choice.0.chars().count() <= MAX_CHOICE_LEN);
        assert!(choice.1.chars().count() <= MAX_CHOICE_LEN);
        // Every value resolves back to rows.
        let answer = ask(&data, &[&choice.1]);
        assert!(!answer.rows.is_empty(), "{choice:?}");
        assert!(answer.not_found.is_empty());
    }
    let values = |prefix: &str| -> Vec<String> {
        data.autocomplete(prefix)
            .into_iter()
            .map(|c| c.value)
            .collect()
    };
    assert_eq!(values("goo"), vec!["Google", "Google L4 MLE"]);
    assert_eq!(values("Me")[0], "Meta");
    assert_eq!(values("fb"), vec!["Meta", "Meta E4 DS"]);
    assert_eq!(values("hf"), vec!["Hugging Face", "Hugging Face mid"]);
    assert_eq!(values("meta e"), vec!["Meta E4 DS"]);
    assert_eq!(values("googel"), vec!["Google", "Google L4 MLE"]);
    assert!(values("face").contains(&"Hugging Face".to_string()));
    assert!(values("zzzz").is_empty());
    let anthropic = data.autocomplete("anth");
    assert_eq!(anthropic[0].value, "Anthropic");
    assert_eq!(anthropic[1].name, "Anthropic MTS-3 · total $450k–$700k+");
}

#[test]
fn rendering_aligns_columns_by_display_width() {
    let (_, data) = bundled();
    let answer = ask(&data, &["openai", "hugging face", "faang"]);
    let text = render_aligned_table(&answer.rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 + answer.rows.len() + 1);
    assert!(lines[0].starts_with("Company"));
    for header in ["Role", "Level", "Base", "Total comp", "Notes"] {
        assert!(lines[0].contains(header));
    }
    assert!(!text.contains('|'), "no Markdown table");
    // Each column starts at the same display column on every line.
    let column_of = |line: &str, needle: &str| -> usize {
        let byte = line
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in {line:?}"));
        display_width(&line[..byte])
    };
    let total_column = column_of(lines[0], "Total comp");
    assert_eq!(column_of(lines[2], "$500k–$900k+"), total_column);
    assert_eq!(column_of(lines[3], "$250k–$380k"), total_column);
    assert_eq!(column_of(lines[4], "$240k–$380k"), total_column);
    let base_column = column_of(lines[0], "Base");
    assert_eq!(column_of(lines[2], "$310k–$420k"), base_column);
    assert_eq!(column_of(lines[4], "$170k–$220k"), base_column);
    assert_eq!(
        column_of(lines[2], "heavy PPU"),
        column_of(lines[0], "Notes")
    );
    assert!(lines[2].contains("MTS (mid)"));
    assert!(lines[3].contains("from the text"));
    assert!(lines.iter().all(|line| line == &line.trim_end()));
    let footer = lines.last().unwrap();
    assert_eq!(*footer, source_footer(&answer.rows));
    assert_eq!(
        *footer,
        "Source: levels.fyi 2026, per Mid-Level Data Scientist / ML Engineer Guide (2026): What Senior Promotion Actually Looks Like §Compensation: the real bands at mid, §Key takeaways"
    );
    assert_eq!(
        render_rows(&answer.rows),
        lines[..lines.len() - 1].join("\n")
    );
    assert_eq!(render_aligned_table(&[]), "No compensation rows.");
}

#[test]
fn json_has_the_documented_shape() {
    let (_, data) = bundled();
    let answer = ask(&data, &["netflix", "amazon"]);
    let json = serde_json::to_value(&answer).unwrap();
    let row = &json["rows"][0];
    for key in [
        "company",
        "role",
        "level",
        "base",
        "total",
        "notes",
        "guide",
        "section_id",
        "heading",
        "as_of",
        "source",
    ] {
        assert!(row.get(key).is_some(), "missing {key}");
    }
    assert_eq!(row["company"], "Netflix");
    assert_eq!(row["role"], "MLE");
    assert_eq!(row["level"], "L5");
    assert_eq!(
        row["total"],
        serde_json::json!({"min": 380000, "max": 580000, "open_ended": false, "text": "$380k–$580k"})
    );
    assert_eq!(
        row["base"],
        serde_json::json!({"min": 310000, "max": 380000, "open_ended": false, "text": "$310k–$380k"})
    );
    assert_eq!(row["notes"], serde_json::json!(["single-band"]));
    assert_eq!(row["guide"], "mid-level-ds-mle-2026");
    assert_eq!(row["section_id"], "compensation-the-real-bands-at-mid");
    assert_eq!(row["as_of"], "2026");
    assert_eq!(row["source"], "levels.fyi 2026");
    assert_eq!(row["origin"], "table");
    assert!(row.get("duplicate").is_none());
    assert_eq!(json["not_found"], serde_json::json!(["amazon"]));
    assert!(json["suggestions"].is_array());
    // A prose row has no base: null.
    let faang = serde_json::to_value(ask(&data, &["faang"])).unwrap();
    assert!(faang["rows"][0]["base"].is_null());
    assert_eq!(faang["rows"][0]["origin"], "prose");
    let openai = serde_json::to_value(ask(&data, &["openai"])).unwrap();
    assert_eq!(
        openai["rows"][0]["total"],
        serde_json::json!({"min": 500000, "max": 900000, "open_ended": true, "text": "$500k–$900k+"})
    );
}

#[test]
fn a_differently_shaped_table_in_another_corpus_parses() {
    let corpus = corpus_at("tests/fixtures/comp-alt");
    let data = CompData::from_corpus(&corpus).unwrap();
    let records = data.records();
    assert_eq!(
        records.len(),
        4,
        "the Tools table is not a comp table; no prose figure qualifies"
    );
    let google = &records[0];
    assert_eq!(google.company, "Google");
    assert_eq!(google.level.as_deref(), Some("L5"));
    assert_eq!(google.role, None);
    assert_eq!(
        google.total,
        Some(range(380_000, Some(520_000), false, "$380k–$520k"))
    );
    assert_eq!(
        google.base,
        Some(range(210_000, Some(250_000), false, "$210k–$250k"))
    );
    assert_eq!(google.as_of, "2025");
    assert_eq!(
        google.source,
        "Company offer letters shared with the hub, 2025"
    );
    assert_eq!(google.section_id, "senior-offers");
    let meta = &records[1];
    assert_eq!(
        meta.company, "Meta",
        "Facebook is an alias of Meta in this corpus"
    );
    assert_eq!(
        meta.total,
        Some(range(400_000, Some(400_000), false, "$400k"))
    );
    assert_eq!(
        meta.base,
        Some(range(215_000, Some(215_000), false, "$215k"))
    );
    assert_eq!(meta.notes, vec!["refreshers vary"]);
    let stripe = &records[2];
    assert_eq!(stripe.company, "Stripe");
    assert_eq!(stripe.level.as_deref(), Some("Senior"));
    assert_eq!(stripe.role.as_deref(), Some("MLE"));
    assert_eq!(
        stripe.base,
        Some(range(240_000, Some(240_000), false, "$240,000"))
    );
    assert_eq!(stripe.notes, vec!["cash-heavy"]);
    let acme = &records[3];
    assert_eq!(acme.company, "Acme Robotics");
    assert_eq!(acme.base, None);
    assert_eq!(acme.total, Some(range(1_100_000, None, true, "$1.1M+")));
    assert_eq!(acme.notes, vec!["one report"]);

    let answer = data.lookup(&query(&["fb", "goog", "stripe", "acme"], None, None));
    let order: Vec<&str> = answer.rows.iter().map(|r| r.company.as_str()).collect();
    assert_eq!(order, vec!["Acme Robotics", "Google", "Stripe", "Meta"]);
    assert_eq!(
        data.autocomplete("ac")[0].value,
        "Acme Robotics",
        "{:?}",
        data.autocomplete("ac")
    );
    let text = render_aligned_table(&answer.rows);
    assert!(text.ends_with("Source: Company offer letters shared with the hub, 2025, per Senior ML Engineer Pay Notes (2025) §Senior offers"));
}

#[test]
fn an_unreadable_cell_leaves_its_row_out_with_a_warning_naming_file_and_line() {
    let corpus = corpus_at("tests/fixtures/comp-bad");
    // One odd row never stops the others (or the bot); no figure is guessed for it.
    let data = CompData::from_corpus(&corpus).expect("the other rows load");
    let file = Path::new("tests/fixtures/comp-bad/guide.md");
    let warning = data
        .warnings()
        .iter()
        .find(|warning| warning.contains("guide.md:15:"))
        .unwrap_or_else(|| panic!("{:?}", data.warnings()));
    assert!(warning.contains(&file.display().to_string()), "{warning}");
    assert!(
        warning.contains("cannot read the total comp cell \"lots\""),
        "{warning}"
    );
    assert!(data.records().iter().all(|record| record.line != 15));
}

#[test]
fn a_broken_alias_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/comp-alt/guide.md"),
        dir.path().join("guide.md"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("company-aliases.toml"),
        "[companies]\nMeta = \"fb\"\n",
    )
    .unwrap();
    let corpus = Corpus::load(dir.path()).unwrap();
    let message = CompData::from_corpus(&corpus).unwrap_err().to_string();
    assert!(message.contains("company-aliases.toml:2:"), "{message}");
}

#[test]
fn pay_questions_name_what_the_tables_do_not_cover_and_never_a_covered_company() {
    let (_, data) = bundled();
    assert!(data.asks_for_pay("what does airbnb pay data scientists"));
    assert!(data.asks_for_pay("what do machine learning engineers make at apple"));
    assert!(data.asks_for_pay("how much do they make at uber"));
    assert!(!data.asks_for_pay("what makes a good ML system design answer"));
    assert!(!data.asks_for_pay("what does it take to make senior as a data scientist"));
    assert!(data.asks_for_pay("what do data scientists make in london"));
    assert!(!data.asks_for_pay("which companies hire for causal inference, like airbnb?"));
    assert_eq!(
        data.not_in_pay_tables("airbnb DS salary").as_deref(),
        Some("Airbnb")
    );
    assert_eq!(
        data.not_in_pay_tables("MLE comp in tel aviv").as_deref(),
        Some("Tel Aviv")
    );
    // Parts of pay the tables do not carry make a pay question of their own, named most specific
    // first; one a guide mentions ("vesting") is covered.
    assert!(data.asks_for_pay("does google do a 401k match"));
    assert_eq!(
        data.not_in_pay_tables("typical signing bonus for meta E4?")
            .as_deref(),
        Some("signing bonus")
    );
    // Whole words only: "amazonian" is not Amazon, "turkeys" not Turkey.
    assert_eq!(data.not_in_pay_tables("amazonian pay for turkeys"), None);
    assert_eq!(data.not_in_pay_tables("meta E4 DS salary"), None);

    // A name listed as not covered that a guide's table does cover is ignored: adding a row to a
    // guide needs no edit of the list.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("corpus/mid-level-ds-mle-guide-2026.md"),
        dir.path().join("guide.md"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(guidebot::comp::ALIASES_FILE_NAME),
        "[companies]\n\"Meta\" = [\"fb\"]\n[not_covered]\nemployers = [\"Netflix\", \"fb\", \"Airbnb\"]\nplaces = [\"Berlin\"]\npay = [\"vesting\", \"signing bonus\"]\n",
    )
    .unwrap();
    let corpus = Corpus::load(dir.path()).unwrap();
    let data = CompData::from_corpus(&corpus).unwrap();
    assert_eq!(data.not_in_pay_tables("netflix L5 MLE salary"), None);
    assert_eq!(data.not_in_pay_tables("fb E4 DS pay"), None);
    assert_eq!(
        data.not_in_pay_tables("airbnb pay").as_deref(),
        Some("Airbnb")
    );
    assert_eq!(
        data.not_in_pay_tables("salary in berlin").as_deref(),
        Some("Berlin")
    );
    // The guide mentions "PPU vesting cycles": vesting is covered; a signing bonus is not.
    assert_eq!(data.not_in_pay_tables("vesting at openai"), None);
    assert_eq!(
        data.not_in_pay_tables("signing bonus at openai").as_deref(),
        Some("signing bonus")
    );
}
