//! ARCHITECTURE.md's code map, checked against the code, in the spirit of rust-analyzer's tidy
//! tests: every `src/**/*.rs` file is read, its `crate::` and `super::` paths and the external
//! crates it names are collected (comments and string literals removed first), and the test
//! fails when a module imports a module on its own floor or above, names a crate its row says it
//! must not, or two files of one module import each other. The map is the table in
//! ARCHITECTURE.md, so changing the layering means changing the document.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One row of the code map: its floor, the paths it covers, the crates it must not name.
#[derive(Debug, Clone)]
struct Row {
    floor: u32,
    paths: Vec<String>,
    forbidden: Vec<String>,
}

/// Reads the code map table: `| floor | paths | what | must not import |`.
fn read_map(markdown: &str) -> Vec<Row> {
    markdown
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let floor = cells.first()?.parse::<u32>().ok()?;
            let paths = cells
                .get(1)?
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            let forbidden = cells
                .get(3)
                .map(|cell| {
                    cell.split(',')
                        .map(|name| name.trim().trim_matches('`').to_string())
                        .filter(|name| !name.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            Some(Row {
                floor,
                paths,
                forbidden,
            })
        })
        .collect()
}

/// The top-level module a file belongs to: `src/bot/dispatch.rs` and `src/bot/mod.rs` → `bot`.
fn module_of(path: &str) -> String {
    let rest = path.trim_start_matches("src/");
    let first = rest.split('/').next().unwrap_or(rest);
    first.trim_end_matches(".rs").to_string()
}

/// The map row covering a module (`src/bot/` or `src/bot.rs` names module `bot`).
fn row_of<'a>(map: &'a [Row], module: &str) -> Option<&'a Row> {
    map.iter().find(|row| {
        row.paths
            .iter()
            .any(|path| module_of(path.trim_end_matches('/')) == module)
    })
}

/// The code without comments, string literals and char literals (their text is not code).
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident_char(chars.get(i.wrapping_sub(1)).copied())
        {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].iter().collect::<String>().starts_with(&closing) {
                i += 1;
            }
            i += closing.len();
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// The first segment of every path starting with `prefix` (`crate::`, `super::`), groups
/// (`crate::{a::X, b}`) included.
fn targets(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if ident_char(before) {
            continue;
        }
        let segments: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(end, _)| end);
            let mut depth = 0;
            let mut items = vec![String::new()];
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(String::new()),
                    _ => {}
                }
                if let Some(last) = items.last_mut() {
                    last.push(c);
                }
            }
            items
                .iter()
                .map(|item| first_ident(item.trim_start_matches(',').trim()))
                .collect()
        } else {
            vec![first_ident(rest)]
        };
        found.extend(
            segments
                .into_iter()
                .filter(|s| !s.is_empty() && s != "self"),
        );
    }
    found
}

fn first_ident(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|&c| c.is_alphanumeric() || c == '_')
        .collect()
}

/// Whether `code` names the external crate `name` as a path (`name::...`).
fn names_crate(code: &str, name: &str) -> bool {
    let pattern = format!("{name}::");
    code.match_indices(&pattern).any(|(at, _)| {
        let before = code[..at].chars().last();
        !ident_char(before) && before != Some(':')
    })
}

/// Every rule the map implies, broken: a list of violations (empty when the code follows it).
fn check(map: &[Row], files: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let module = module_of(path);
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(row) = row_of(map, &module) else {
            problems.push(format!(
                "{path}: module `{module}` is not in ARCHITECTURE.md's code map"
            ));
            continue;
        };
        let code = strip(text);
        for target in targets(&code, "crate::") {
            if target == module {
                continue;
            }
            match row_of(map, &target) {
                Some(other) if other.floor < row.floor => {}
                Some(other) => problems.push(format!(
                    "{path}: `{module}` (floor {}) imports crate::{target} (floor {}); a module may import only lower floors",
                    row.floor, other.floor
                )),
                None => problems.push(format!("{path}: imports crate::{target}, which is not in the map")),
            }
        }
        for name in &row.forbidden {
            if names_crate(&code, name) {
                problems.push(format!("{path}: `{module}` must not name `{name}`"));
            }
        }
        // Files of one module: `super::sibling` and `crate::module::sibling`.
        let dir = Path::new(path)
            .parent()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default();
        let mut uses: BTreeSet<String> = targets(&code, "super::");
        uses.extend(targets(&code, &format!("crate::{module}::")));
        for sibling in uses {
            let sibling_path = format!("{dir}/{sibling}.rs");
            if files.contains_key(&sibling_path) && sibling_path != *path {
                siblings
                    .entry(path.clone())
                    .or_default()
                    .insert(sibling_path);
            }
        }
    }
    for (from, tos) in &siblings {
        for to in tos {
            let back = siblings.get(to).is_some_and(|set| set.contains(from));
            if back && from < to {
                problems.push(format!("{from} and {to} import each other"));
            }
        }
    }
    problems
}

/// Paths the map lists that have no source file (a map of code that is gone).
fn missing_paths(map: &[Row], files: &BTreeMap<String, String>) -> Vec<String> {
    map.iter()
        .flat_map(|row| &row.paths)
        .filter(|listed| !files.keys().any(|path| path.starts_with(listed.as_str())))
        .map(|listed| format!("ARCHITECTURE.md lists `{listed}`, which has no source file"))
        .collect()
}

fn source_files(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            source_files(&path, root, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .display()
                .to_string();
            out.insert(
                relative,
                std::fs::read_to_string(&path).expect("a readable source file"),
            );
        }
    }
}

fn the_map() -> Vec<Row> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let map = read_map(&text);
    assert!(map.len() > 10, "no code map table found in ARCHITECTURE.md");
    map
}

#[test]
fn the_code_follows_the_map_in_architecture_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    source_files(&root.join("src"), root, &mut files);
    let map = the_map();
    let mut problems = check(&map, &files);
    problems.extend(missing_paths(&map, &files));
    assert!(
        problems.is_empty(),
        "the code map is not true:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_rejects_bad_imports_loops_and_forbidden_crates() {
    let map = the_map();
    let file = |path: &str, text: &str| (path.to_string(), text.to_string());
    let good: BTreeMap<String, String> = [
        file("src/corpus/mod.rs", "//! Guides. Not `crate::bot`.\nuse crate::util::text::truncate;\nconst S: &str = \"crate::bot\";"),
        file("src/util/mod.rs", "pub mod text;"),
    ]
    .into();
    assert_eq!(check(&map, &good), Vec::<String>::new());

    // The corpus (floor 1) reaching up into the bot, in a grouped import.
    let mut bad = good.clone();
    bad.insert(
        "src/corpus/mod.rs".into(),
        "use crate::{util::clock, bot::Dispatcher};".into(),
    );
    let problems = check(&map, &bad);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("crate::bot"), "{problems:?}");

    // The engine naming serenity; two search files importing each other.
    let bad: BTreeMap<String, String> = [
        file("src/engine.rs", "fn f(_: serenity::all::Message) {}"),
        file("src/search/a.rs", "use super::b::x;"),
        file("src/search/b.rs", "use crate::search::a::y;"),
    ]
    .into();
    let problems = check(&map, &bad).join("\n");
    assert!(problems.contains("must not name `serenity`"), "{problems}");
    assert!(
        problems.contains("src/search/a.rs and src/search/b.rs import each other"),
        "{problems}"
    );
}
