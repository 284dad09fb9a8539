//! Compensation records and lookup: the guides' pay tables (and comp figures in their prose) as typed rows.
//!
//! People ask the hub for pay bands; a paraphrase through an LLM can drift, so `/comp` answers with
//! the guide's exact row, its source and its as-of date. This module is core logic only (no Discord
//! types): [`CompData::from_corpus`] reads every comp table of a [`Corpus`] into [`CompRecord`]s,
//! [`CompData::lookup`] answers forgiving company / level / role queries, [`CompData::autocomplete`]
//! feeds the slash command, and [`render`] prints rows as aligned monospace text (Discord cannot
//! render Markdown tables). Every number shown comes from the corpus; nothing is computed or guessed.

mod aliases;
mod extract;
mod money;
/// Aligned monospace rendering of rows (terminal and Discord code blocks).
pub mod render;

pub use aliases::{CompanyAliases, ALIASES_FILE_NAME};
pub use money::{parse_money, MoneyRange};
pub use render::{render_aligned_table, render_rows, source_footer};

use crate::corpus::{Corpus, CorpusError};
use serde::Serialize;

/// Where a record was read from, so answers can say whether it is a table row or a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A row of a comp table.
    Table,
    /// A figure stated in running text with a company or tier name ("FAANG-tier mid total comp ...").
    Prose,
}

/// One pay band from a guide, with everything needed to cite it. Serialized as the `--json` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompRecord {
    /// Canonical company or tier name ("Meta", "Scale AI", "FAANG-tier").
    pub company: String,
    /// Role code ("DS", "MLE", "MTS"), when the row names one.
    pub role: Option<String>,
    /// Level code ("E4", "MTS-3", "mid"), when the row names one.
    pub level: Option<String>,
    /// The level cell exactly as written ("MTS-3 (mid)", "mid MLE").
    pub level_text: String,
    /// Base salary band; `None` when the table has no base column or the figure is prose.
    pub base: Option<MoneyRange>,
    /// Total comp band: what comparisons rank by.
    pub total: Option<MoneyRange>,
    /// Notes that came with the figures ("single-band", "heavy PPU", "remote-friendly").
    pub notes: Vec<String>,
    /// The guide's slug.
    pub guide: String,
    /// The guide's title, for the source footer.
    pub guide_title: String,
    /// The section the figure sits in, for citations and `/source`.
    pub section_id: String,
    /// That section's heading, shown as "§heading".
    pub heading: String,
    /// The guide's as-of date ("2026").
    pub as_of: String,
    /// The source the guide names for the figure ("levels.fyi 2026").
    pub source: String,
    /// Table row or prose figure.
    pub origin: Origin,
    /// The row or clause the figures come from, verbatim, for citation checks.
    pub quote: String,
    /// The guide's file, for maintainers.
    pub path: String,
    /// 1-based line of the row (or of the passage, for prose).
    pub line: usize,
    /// A prose figure that repeats a table row or an earlier sentence: kept in
    /// [`CompData::records`] but not shown by lookups, so answers do not list a band twice.
    #[serde(skip)]
    pub duplicate: bool,
}

impl CompRecord {
    /// The key rows are compared by: total comp (top of the range, or its floor when open), falling
    /// back to base when a row has no total.
    pub fn rank_key(&self) -> (u8, u64, u64) {
        match (&self.total, &self.base) {
            (Some(total), _) => {
                let (top, floor) = total.sort_key();
                (2, top, floor)
            }
            (None, Some(base)) => {
                let (top, floor) = base.sort_key();
                (1, top, floor)
            }
            (None, None) => (0, 0, 0),
        }
    }
}

/// What a user asked: company names as typed (aliases, typos and "Meta E4" welcome), optional level
/// and role filters. No companies means every company.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompQuery {
    /// Names as typed; entries may hold several names separated by commas.
    pub companies: Vec<String>,
    /// Level filter ("L4", "l-4", "mts3", "mid"); overrides a level typed after a name.
    pub level: Option<String>,
    /// Role filter ("MLE", "data scientist"); overrides a role typed after a name.
    pub role: Option<String>,
}

/// The answer to a [`CompQuery`], serialized as the `--json` output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompLookup {
    /// Matching rows, highest total comp first.
    pub rows: Vec<CompRecord>,
    /// Names the guides do not cover, as the user typed them.
    pub not_found: Vec<String>,
    /// Closest company names for the not-found ones, and the levels a known company does have when
    /// the filters matched none of its rows.
    pub suggestions: Vec<String>,
    /// Companies the guides cover but with no row fitting the level / role filters.
    pub filtered_out: Vec<String>,
}

/// One autocomplete choice: `name` is shown, `value` is sent back and resolves through `lookup`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompChoice {
    /// What the user sees, e.g. "Meta E4 DS · total $300k–$420k".
    pub name: String,
    /// What comes back as the option value, e.g. "Meta E4 DS".
    pub value: String,
}

/// All comp records of a corpus plus the aliases that make lookups forgiving.
#[derive(Debug, Clone)]
pub struct CompData {
    records: Vec<CompRecord>,
    aliases: CompanyAliases,
    warnings: Vec<String>,
    /// What pay questions are checked against, worked out once here.
    pay: PayCoverage,
}

/// What a pay question is checked against, worked out once when the data is built so that a
/// request only compares strings: names as their space-padded words (" jane street ").
#[derive(Debug, Clone, Default)]
struct PayCoverage {
    /// `[not_covered]` employers and places that no table or alias covers: (as written, words).
    uncovered_names: Vec<(String, String)>,
    /// `[not_covered] pay` parts no guide mentions: (as written, words).
    uncovered_parts: Vec<(String, String)>,
    /// Role codes and spellings (without "ML", a field rather than a role), singular and plural.
    role_patterns: Vec<String>,
    /// Seniority words some visible row's level names ("mid").
    listed_seniority: Vec<&'static str>,
}

/// `name`'s words, lowercased, joined by spaces and padded with one on each side.
fn spaced_words(name: &str) -> String {
    format!(" {} ", words_of(name).join(" "))
}

/// Lowercase letters and digits only: "Hugging-Face" and "hugging face" both become "huggingface".
pub fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// How many edits a name of this (normalized) length may be off by and still count as a typo.
fn typo_budget(length: usize) -> usize {
    match length {
        0..=3 => 0,
        4..=5 => 1,
        _ => 2,
    }
}

/// A query string resolved into a company and the filters typed along with it ("Meta E4").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    company: String,
    level: Option<String>,
    role: Option<String>,
}

impl CompData {
    /// Reads every comp table and prose comp figure of the corpus, with the aliases in
    /// `corpus.dir/company-aliases.toml` (optional). A comp table with an unreadable cell is an error
    /// naming the file and row line.
    pub fn from_corpus(corpus: &Corpus) -> Result<CompData, CorpusError> {
        let mut aliases = CompanyAliases::load(&corpus.dir)?;
        // A part of pay the guides do talk about is covered, whatever the list says.
        let texts: Vec<String> = corpus
            .passages()
            .map(|passage| format!(" {} ", words_of(&passage.text).join(" ")))
            .collect();
        aliases.not_covered_pay.retain(|part| {
            let wanted = format!(" {} ", words_of(part).join(" "));
            !texts.iter().any(|text| text.contains(&wanted))
        });
        let mut records = Vec::new();
        let mut warnings = Vec::new();
        for guide in &corpus.guides {
            records.extend(extract::guide_records(guide, &aliases, &mut warnings));
        }
        let mut data = CompData::from_records(records, aliases);
        data.warnings = warnings;
        Ok(data)
    }

    /// Rows that could not be read ("file:line: why"), left out of the data; logged at load.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Builds the data from records already read (tests, other sources); marks repeated prose figures.
    pub fn from_records(mut records: Vec<CompRecord>, aliases: CompanyAliases) -> CompData {
        // Tables first, then prose with a level, then the rest: the first of a (company, total) pair
        // stays visible.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|&i| {
            let record = &records[i];
            (record.origin == Origin::Prose, record.level.is_none(), i)
        });
        let mut kept: Vec<usize> = Vec::new();
        for i in order {
            let record = &records[i];
            let repeats = record.origin == Origin::Prose
                && kept.iter().any(|&k| {
                    let other = &records[k];
                    other.guide == record.guide
                        && normalize(&other.company) == normalize(&record.company)
                        && other.total == record.total
                        && other.total.is_some()
                });
            if repeats {
                records[i].duplicate = true;
            } else {
                kept.push(i);
            }
        }
        let mut data = CompData {
            records,
            aliases,
            warnings: Vec::new(),
            pay: PayCoverage::default(),
        };
        data.pay = data.pay_coverage();
        data
    }

    fn pay_coverage(&self) -> PayCoverage {
        let covered: Vec<String> = self
            .companies()
            .iter()
            .flat_map(|company| {
                let mut keys = self.aliases_of(company);
                keys.push(normalize(company));
                keys
            })
            .collect();
        let uncovered_names = self
            .aliases
            .not_covered
            .iter()
            .filter(|name| !covered.contains(&normalize(name)))
            .map(|name| (name.clone(), spaced_words(name)))
            .collect();
        let uncovered_parts = self
            .aliases
            .not_covered_pay
            .iter()
            .map(|part| (part.clone(), spaced_words(part)))
            .collect();
        let role_patterns = self
            .aliases
            .roles
            .iter()
            .filter(|(code, _)| !code.eq_ignore_ascii_case("ML"))
            .flat_map(|(code, spellings)| std::iter::once(code).chain(spellings))
            .flat_map(|spelling| {
                let spelling = spelling.to_lowercase();
                [format!(" {spelling} "), format!(" {spelling}s ")]
            })
            .collect();
        let listed_seniority = SENIORITY_WORDS
            .iter()
            .copied()
            .filter(|seniority| {
                self.visible()
                    .any(|record| record.level_text.to_lowercase().contains(seniority))
            })
            .collect();
        PayCoverage {
            uncovered_names,
            uncovered_parts,
            role_patterns,
            listed_seniority,
        }
    }

    /// Every record, duplicates included, in corpus order (tables, then prose, per guide).
    pub fn records(&self) -> &[CompRecord] {
        &self.records
    }

    /// The aliases in use.
    pub fn aliases(&self) -> &CompanyAliases {
        &self.aliases
    }

    fn visible(&self) -> impl Iterator<Item = &CompRecord> {
        self.records.iter().filter(|record| !record.duplicate)
    }

    /// The companies and tiers the guides cover, sorted case-insensitively: `guidebot comp --list`.
    pub fn companies(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for record in self.visible() {
            if !names.contains(&record.company) {
                names.push(record.company.clone());
            }
        }
        names.sort_by_key(|name| name.to_lowercase());
        names
    }

    /// Answers a query. Names are matched forgivingly (case, spacing, punctuation, aliases, small
    /// typos, unique prefixes); "Meta E4 DS" carries its own level and role. Rows come sorted by total
    /// comp, highest first (the top of the range, or its floor when the top is open; ties by floor,
    /// then company). Unknown names go to `not_found` with the closest known names as suggestions.
    pub fn lookup(&self, query: &CompQuery) -> CompLookup {
        let mut answer = CompLookup::default();
        let names: Vec<&str> = query
            .companies
            .iter()
            .flat_map(|entry| entry.split(','))
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .collect();
        let mut wanted: Vec<Resolved> = Vec::new();
        if names.is_empty() {
            wanted.extend(self.companies().into_iter().map(|company| Resolved {
                company,
                level: None,
                role: None,
            }));
        }
        for name in names {
            match self.resolve(name) {
                Some(resolved) => {
                    if !wanted.contains(&resolved) {
                        wanted.push(resolved);
                    }
                }
                None => {
                    answer.not_found.push(name.to_string());
                    for suggestion in self.closest_companies(name, 3) {
                        if !answer.suggestions.contains(&suggestion) {
                            answer.suggestions.push(suggestion);
                        }
                    }
                }
            }
        }
        for resolved in &wanted {
            let level = query.level.as_deref().or(resolved.level.as_deref());
            let role = query.role.as_deref().or(resolved.role.as_deref());
            let mut matched = false;
            for record in self.visible() {
                if record.company != resolved.company
                    || !level.is_none_or(|level| level_matches(record, level))
                    || !role.is_none_or(|role| self.role_matches(record, role))
                {
                    continue;
                }
                matched = true;
                if !answer.rows.contains(record) {
                    answer.rows.push(record.clone());
                }
            }
            if !matched && (level.is_some() || role.is_some()) {
                answer.filtered_out.push(resolved.company.clone());
                for record in self.visible().filter(|r| r.company == resolved.company) {
                    let combo = combo_value(record);
                    if !answer.suggestions.contains(&combo) {
                        answer.suggestions.push(combo);
                    }
                }
            }
        }
        answer.rows.sort_by(|a, b| {
            b.rank_key()
                .cmp(&a.rank_key())
                .then_with(|| a.company.to_lowercase().cmp(&b.company.to_lowercase()))
                .then_with(|| (a.origin == Origin::Prose).cmp(&(b.origin == Origin::Prose)))
        });
        answer
    }

    /// A level the question names that no pay row lists ("L5" when the tables have L4 and E4,
    /// "senior" when they are all mid-level bands): a pay answer quoting the rows there are would
    /// answer a different question. Level codes (L4, E5, IC4, T3, MTS-3) and seniority words.
    pub fn unlisted_level(&self, question: &str) -> Option<String> {
        let lowered = question.to_lowercase();
        let words: Vec<&str> = lowered
            .split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .map(|word| word.trim_matches('-'))
            .filter(|word| !word.is_empty())
            .collect();
        for word in &words {
            if is_level_code(word) && !self.visible().any(|record| level_matches(record, word)) {
                return Some(word.to_uppercase());
            }
        }
        for seniority in SENIORITY_WORDS {
            let named = if seniority.contains(' ') {
                lowered.contains(seniority)
            } else {
                // "member of technical staff" is a title (MTS), not the staff level.
                words.iter().enumerate().any(|(at, word)| {
                    word == seniority && !(at > 0 && words[at - 1] == "technical")
                })
            };
            if named && !self.pay.listed_seniority.contains(seniority) {
                return Some((*seniority).to_string());
            }
        }
        None
    }

    /// Whether a question asks about pay: a pay word ("salary", "TC", "earn", "comp"), "how much"
    /// with "make", or "make" closing a clause about a role ("what do data scientists make in
    /// London", not "what does it take to make senior"). Pay questions are the ones whose answer
    /// must come from a row for what they name, not from a row that merely shares words.
    pub fn asks_for_pay(&self, question: &str) -> bool {
        let words = words_of(question);
        if words.iter().any(|word| PAY_WORDS.contains(&word.as_str())) {
            return true;
        }
        let lowered = format!(" {} ", words.join(" "));
        if self.uncovered_pay_part(&lowered).is_some() {
            return true;
        }
        let makes = words.iter().any(|word| word == "make" || word == "makes");
        if makes && lowered.contains(" how much ") {
            return true;
        }
        let make_closes_clause = words.iter().enumerate().any(|(at, word)| {
            word == "make"
                && words
                    .get(at + 1)
                    .is_none_or(|next| MAKE_FOLLOWERS.contains(&next.as_str()))
        });
        if !make_closes_clause {
            return false;
        }
        self.pay
            .role_patterns
            .iter()
            .any(|pattern| lowered.contains(pattern.as_str()))
    }

    /// What a pay question names that the pay tables have no row for: a level ("L5", "senior"; see
    /// [`CompData::unlisted_level`]), a part of pay no guide mentions ("signing bonus"), or an
    /// employer or place from the aliases file's `[not_covered]` list that no table covers
    /// ("Airbnb", "London"). Answering such a question
    /// with the rows there are would quote another company's or country's pay as if it answered.
    pub fn not_in_pay_tables(&self, question: &str) -> Option<String> {
        if let Some(level) = self.unlisted_level(question) {
            return Some(level);
        }
        let lowered = format!(" {} ", words_of(question).join(" "));
        if let Some(part) = self.uncovered_pay_part(&lowered) {
            return Some(part);
        }
        self.pay
            .uncovered_names
            .iter()
            .find(|(_, words)| lowered.contains(words.as_str()))
            .map(|(name, _)| name.clone())
    }

    /// The first part of pay from `[not_covered] pay` that `spaced_words` (the question's words,
    /// space-joined and space-padded) names.
    fn uncovered_pay_part(&self, spaced_words: &str) -> Option<String> {
        self.pay
            .uncovered_parts
            .iter()
            .find(|(_, words)| spaced_words.contains(words.as_str()))
            .map(|(part, _)| part.clone())
    }

    /// The words of an earlier question that a follow-up still borrows: a follow-up naming a
    /// company ("and at Meta?") replaces the earlier question's companies, one naming a level
    /// ("what about L5?") replaces its levels, so the borrowed words do not pull the search back
    /// to the row already answered. Other words are kept as written.
    pub fn carry_over(&self, earlier: &str, follow_up: &str) -> String {
        let follow_words = words_of(follow_up);
        let names_company = follow_words
            .iter()
            .any(|word| self.exact_company(word).is_some());
        let names_level = follow_words.iter().any(|word| is_level_code(word));
        words_of(earlier)
            .into_iter()
            .filter(|word| !(names_company && self.exact_company(word).is_some()))
            .filter(|word| !(names_level && is_level_code(word)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The company a single word names exactly (canonical name or alias), if any.
    fn exact_company(&self, word: &str) -> Option<String> {
        let key = normalize(word);
        if key.is_empty() {
            return None;
        }
        self.companies()
            .into_iter()
            .find(|company| normalize(company) == key || self.aliases_of(company).contains(&key))
    }

    /// Choices for the `/comp company` option: companies (matched by name or alias) and
    /// "Company Level" combinations, prefix matches first, then word and substring matches; a typo
    /// falls back to the closest company. An empty prefix lists everything, best first (the caller
    /// keeps as many as its front end shows).
    pub fn autocomplete(&self, prefix: &str) -> Vec<CompChoice> {
        let wanted = normalize(prefix);
        let wanted_words: Vec<String> = prefix.split_whitespace().map(normalize).collect();
        // (score, kind, order, choice)
        let mut scored: Vec<(u8, u8, usize, CompChoice)> = Vec::new();
        let companies = self.companies();
        for (order, company) in companies.iter().enumerate() {
            let key = normalize(company);
            let aliases = self.aliases_of(company);
            let alias_hit = aliases.iter().any(|alias| alias.starts_with(&wanted));
            let score = match_rank(
                &key,
                &wanted,
                alias_hit,
                words_start_with(company, &wanted_words),
            );
            if let Some(score) = score {
                scored.push((score, 0, order, choice(company.clone(), company.clone())));
            }
        }
        for (order, record) in self.visible().enumerate() {
            let value = combo_value(record);
            if value == record.company {
                continue;
            }
            let key = normalize(&value);
            // "fb" or "fb e4": an alias typed in place of the company name.
            let alias_hit = wanted_words.first().is_some_and(|first| {
                !first.is_empty()
                    && self
                        .aliases_of(&record.company)
                        .iter()
                        .any(|alias| alias.starts_with(first.as_str()))
                    && (wanted_words.len() == 1
                        || words_start_with(&value[record.company.len()..], &wanted_words[1..]))
            });
            let score = match_rank(
                &key,
                &wanted,
                alias_hit,
                words_start_with(&value, &wanted_words),
            );
            if let Some(score) = score {
                scored.push((score, 1, order, choice(combo_name(record), value)));
            }
        }
        if scored.is_empty() && wanted.len() >= 3 {
            if let Some(company) = self.resolve_name(prefix) {
                scored.push((0, 0, 0, choice(company.clone(), company.clone())));
                for (order, record) in self.visible().enumerate() {
                    let value = combo_value(record);
                    if record.company == company && value != company {
                        scored.push((0, 1, order, choice(combo_name(record), value)));
                    }
                }
            }
        }
        scored.sort_by_key(|(score, kind, order, _)| (*score, *kind, *order));
        let mut choices: Vec<CompChoice> = Vec::new();
        for (_, _, _, candidate) in scored {
            if !choices.iter().any(|c| c.value == candidate.value) {
                choices.push(candidate);
            }
        }
        choices
    }

    fn aliases_of(&self, company: &str) -> Vec<String> {
        self.aliases
            .companies
            .iter()
            .filter(|(name, _)| normalize(name) == normalize(company))
            .flat_map(|(_, aliases)| aliases.iter().map(|alias| normalize(alias)))
            .collect()
    }

    fn role_matches(&self, record: &CompRecord, role: &str) -> bool {
        let wanted = self
            .aliases
            .role_code(role)
            .map(|code| normalize(&code))
            .unwrap_or_else(|| normalize(role));
        record
            .role
            .as_deref()
            .is_some_and(|have| normalize(have) == wanted)
    }

    /// A company name from a typed one: exact (after normalization) or alias, then a unique prefix,
    /// then the single closest name within a small typo budget.
    fn resolve_name(&self, text: &str) -> Option<String> {
        let key = normalize(text);
        if key.is_empty() {
            return None;
        }
        let companies = self.companies();
        let candidates: Vec<(String, &String)> = companies
            .iter()
            .flat_map(|company| {
                std::iter::once(normalize(company))
                    .chain(self.aliases_of(company))
                    .map(move |k| (k, company))
            })
            .collect();
        if let Some((_, company)) = candidates.iter().find(|(k, _)| *k == key) {
            return Some((*company).clone());
        }
        if key.len() >= 3 {
            let mut prefixed: Vec<&String> = candidates
                .iter()
                .filter(|(k, _)| k.starts_with(&key))
                .map(|(_, company)| *company)
                .collect();
            prefixed.dedup();
            if let [only] = prefixed.as_slice() {
                return Some((*only).clone());
            }
        }
        let budget = typo_budget(key.chars().count());
        let mut best: Option<(usize, Vec<&String>)> = None;
        for (candidate, company) in &candidates {
            if candidate.chars().count() < 4 {
                continue;
            }
            let distance = strsim::damerau_levenshtein(&key, candidate);
            if distance > budget {
                continue;
            }
            match &mut best {
                Some((d, list)) if distance == *d => {
                    if !list.contains(company) {
                        list.push(company);
                    }
                }
                Some((d, _)) if distance > *d => {}
                _ => best = Some((distance, vec![company])),
            }
        }
        match best {
            Some((_, list)) if list.len() == 1 => Some(list[0].clone()),
            _ => None,
        }
    }

    /// Resolves a typed entry: a name alone, or a name followed by level / role words ("meta e4 ds",
    /// "googel l4").
    fn resolve(&self, text: &str) -> Option<Resolved> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let plain = |company: String| Resolved {
            company,
            level: None,
            role: None,
        };
        let exact = |name: &str| {
            let key = normalize(name);
            self.companies().into_iter().find(|company| {
                normalize(company) == key || self.aliases_of(company).contains(&key)
            })
        };
        if let Some(company) = exact(text) {
            return Some(plain(company));
        }
        if let Some(resolved) = self.split_filters(&words, exact) {
            return Some(resolved);
        }
        if let Some(company) = self.resolve_name(text) {
            return Some(plain(company));
        }
        self.split_filters(&words, |name| self.resolve_name(name))
    }

    fn split_filters(
        &self,
        words: &[&str],
        find: impl Fn(&str) -> Option<String>,
    ) -> Option<Resolved> {
        for used in (1..words.len()).rev() {
            let Some(company) = find(&words[..used].join(" ")) else {
                continue;
            };
            let mut role = None;
            let mut level_words = Vec::new();
            for word in &words[used..] {
                match self.aliases.role_code(word) {
                    Some(code) if role.is_none() => role = Some(code),
                    _ if self.looks_like_level(word) => level_words.push(*word),
                    // "Google DeepMind" is not Google with a level "DeepMind".
                    _ => return None,
                }
            }
            // "OpenAI MTS": the role word is also the level there.
            let level = (!level_words.is_empty()).then(|| level_words.join(" "));
            return Some(Resolved {
                company,
                level,
                role,
            });
        }
        None
    }

    /// Whether a typed word can be a level: a code ("E4", "L-4", "mts3"), a seniority word, or any
    /// word of a level the records use.
    fn looks_like_level(&self, word: &str) -> bool {
        let key = normalize(word);
        extract::is_level_code(word)
            || extract::is_level_code(&key)
            || extract::SENIORITY_WORDS.contains(&key.as_str())
            || self.visible().any(|record| {
                record
                    .level_text
                    .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                    .any(|part| !part.is_empty() && normalize(part) == key)
            })
    }

    /// The known names most like `text`, best first, for "did you mean".
    fn closest_companies(&self, text: &str, count: usize) -> Vec<String> {
        let key = normalize(text);
        let mut scored: Vec<(f64, String)> = self
            .companies()
            .into_iter()
            .map(|company| {
                let best = std::iter::once(normalize(&company))
                    .chain(self.aliases_of(&company))
                    .map(|candidate| strsim::jaro_winkler(&key, &candidate))
                    .fold(0.0_f64, f64::max);
                (best, company)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(count)
            .map(|(_, company)| company)
            .collect()
    }
}

/// Whether a record fits a level filter: "l4", "L-4", "mts3", "mid", "mid-level" all work.
/// Seniority words a pay question can name instead of a level code.
const SENIORITY_WORDS: &[&str] = &[
    "senior",
    "staff",
    "principal",
    "junior",
    "entry-level",
    "entry level",
    "intern",
    "new grad",
    "new-grad",
    "director",
];

/// "l4", "e5", "ic4", "t3", "mts-3", "mts3": a level code as companies write them.
/// The lowercase words of `text` (letters, digits and inner hyphens).
/// Words after "make" that leave it meaning pay ("make at Google", "make per year").
const MAKE_FOLLOWERS: &[&str] = &[
    "at", "in", "per", "a", "with", "on", "annually", "yearly", "there", "now",
];

/// Words that make a question a pay question on their own.
const PAY_WORDS: &[&str] = &[
    "salary",
    "salaries",
    "pay",
    "pays",
    "paid",
    "paying",
    "comp",
    "compensation",
    "tc",
    "earn",
    "earns",
    "earning",
    "income",
    "wage",
    "wages",
];

fn words_of(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .map(|word| word.trim_matches('-'))
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

fn is_level_code(word: &str) -> bool {
    let word = word
        .strip_prefix("mts")
        .map(|rest| rest.trim_start_matches('-'))
        .map_or_else(
            || {
                ["ic", "l", "e", "t"]
                    .iter()
                    .find_map(|prefix| word.strip_prefix(prefix))
            },
            Some,
        );
    word.is_some_and(|digits| {
        !digits.is_empty() && digits.len() <= 2 && digits.chars().all(|c| c.is_ascii_digit())
    })
}

fn level_matches(record: &CompRecord, level: &str) -> bool {
    let mut wanted = normalize(level);
    if wanted.len() > "level".len() {
        if let Some(stripped) = wanted.strip_suffix("level") {
            wanted = stripped.to_string();
        }
    }
    if wanted.is_empty() {
        return true;
    }
    let mut candidates: Vec<String> = Vec::new();
    if let Some(level) = &record.level {
        candidates.push(normalize(level));
    }
    candidates.push(normalize(&record.level_text));
    candidates.extend(
        record
            .level_text
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .map(normalize),
    );
    candidates.contains(&wanted)
}

/// How well a typed prefix matches a choice, best first: the choice starts with it (0), an alias
/// does (1), the choice's words start with the typed words (2), the choice contains it (3).
fn match_rank(key: &str, wanted: &str, alias_hit: bool, words_hit: bool) -> Option<u8> {
    if key.starts_with(wanted) {
        Some(0)
    } else if alias_hit {
        Some(1)
    } else if words_hit {
        Some(2)
    } else if key.contains(wanted) {
        Some(3)
    } else {
        None
    }
}

fn words_start_with(text: &str, wanted_words: &[String]) -> bool {
    if wanted_words.is_empty() {
        return false;
    }
    let words: Vec<String> = text.split_whitespace().map(normalize).collect();
    // Every typed word must start some word of the text, in order.
    let mut position = 0;
    for wanted in wanted_words {
        match words[position..]
            .iter()
            .position(|w| w.starts_with(wanted.as_str()))
        {
            Some(found) => position += found + 1,
            None => return false,
        }
    }
    true
}

/// "Meta E4 DS", "Anthropic MTS-3", "Scale AI mid MLE": the value that resolves back to this row.
fn combo_value(record: &CompRecord) -> String {
    let mut parts = vec![record.company.clone()];
    if let Some(level) = &record.level {
        parts.push(level.clone());
    }
    if let Some(role) = &record.role {
        let implied = record.level.as_deref().is_some_and(|level| {
            level
                .split(['-', ' '])
                .any(|word| word.eq_ignore_ascii_case(role))
        });
        if !implied {
            parts.push(role.clone());
        }
    }
    parts.join(" ")
}

/// The shown name of a combo choice: the value plus its total comp, as the guide writes it.
fn combo_name(record: &CompRecord) -> String {
    let figure = match (&record.total, &record.base) {
        (Some(total), _) => format!(" · total {}", total.text),
        (None, Some(base)) => format!(" · base {}", base.text),
        (None, None) => String::new(),
    };
    format!("{}{figure}", combo_value(record))
}

fn choice(name: String, value: String) -> CompChoice {
    CompChoice { name, value }
}

#[cfg(test)]
mod level_tests {
    use super::is_level_code;

    #[test]
    fn level_codes_are_recognized() {
        for code in ["l4", "e5", "ic4", "t3", "mts-3", "mts3"] {
            assert!(is_level_code(code), "{code}");
        }
        for word in ["llm", "e", "l", "eval", "l400", "mts"] {
            assert!(!is_level_code(word), "{word}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_to_letters_and_digits() {
        assert_eq!(normalize("Hugging-Face"), "huggingface");
        assert_eq!(normalize(" Scale  AI "), "scaleai");
        assert_eq!(normalize("L-4"), "l4");
    }

    #[test]
    fn typed_words_must_start_words_in_order() {
        let words = |s: &str| s.split_whitespace().map(normalize).collect::<Vec<_>>();
        assert!(words_start_with("Meta E4 DS", &words("me e4")));
        assert!(words_start_with("Hugging Face", &words("fa")));
        assert!(!words_start_with("Meta E4 DS", &words("ds e4")));
        assert!(!words_start_with("Meta", &[]));
    }
}
