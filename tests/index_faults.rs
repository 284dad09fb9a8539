//! Fault injection on the index folder: damaged files, builders racing each other (threads, and
//! separate processes started together), a build killed half-way (a leftover folder, and a real
//! process killed with SIGKILL), a generation deleted under a reader, clean-up beside recently
//! opened generations. Each case must end with a correct answer and no panic escaping; damage is
//! repaired by a rebuild that says why. Seeded and bounded: waits poll with a deadline, no sleeps
//! for luck.

mod support;

use guidebot::search::{OpenOutcome, SearchIndex, SearchOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::setup::{bundled_corpus, bundled_corpus_dir};

const QUESTION: &str = "whats the TC for a google L4 MLE?";

/// The live generation's folder.
fn generation(root: &Path) -> PathBuf {
    let current = std::fs::read_to_string(root.join("CURRENT")).expect("CURRENT exists");
    root.join(current.trim())
}

fn answers_google(index: &SearchIndex) {
    let results = index
        .search(QUESTION, &SearchOptions::default())
        .expect("search works");
    assert!(results.relevant);
    assert_eq!(
        results.hits[0].section_id,
        "compensation-the-real-bands-at-mid",
        "{:?}",
        results
            .hits
            .iter()
            .map(|hit| &hit.section_id)
            .collect::<Vec<_>>()
    );
}

/// A small deterministic generator, so every run damages the same bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn a_damaged_byte_in_any_index_file_is_detected_and_rebuilt() {
    let corpus = bundled_corpus();
    let root = tempfile::tempdir().expect("temp dir");
    SearchIndex::build(&corpus, root.path()).expect("index builds");
    let files: Vec<PathBuf> = std::fs::read_dir(generation(root.path()))
        .expect("generation folder")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            // Index data files; the metadata and markers are checked by other tests.
            name.contains('.') && !name.ends_with(".json") && !name.starts_with('.')
        })
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut damaged_names = Vec::new();
    let extensions: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|path| path.extension())
        .map(|extension| extension.to_string_lossy().into_owned())
        .collect();
    for extension in &extensions {
        // A fresh good index (segment file names change with each build), then one flipped byte
        // in its file of this kind.
        SearchIndex::build(&corpus, root.path()).expect("index builds");
        let Some(target) = std::fs::read_dir(generation(root.path()))
            .expect("generation folder")
            .flatten()
            .map(|entry| entry.path())
            .find(|path| {
                path.extension()
                    .is_some_and(|found| found == extension.as_str())
            })
        else {
            continue;
        };
        let name = target.file_name().unwrap_or_default().to_owned();
        let mut bytes = std::fs::read(&target).expect("index file");
        if bytes.is_empty() {
            continue;
        }
        let offset = (random.next() % bytes.len() as u64) as usize;
        bytes[offset] ^= 0x5a;
        std::fs::write(&target, &bytes).expect("write damage");
        damaged_names.push(name.to_string_lossy().into_owned());

        let (index, outcome) =
            SearchIndex::open_or_build(&corpus, root.path()).expect("damage never fails the open");
        match outcome {
            OpenOutcome::Built { reason } => assert!(
                reason.contains("checksum")
                    || reason.contains("unreadable")
                    || reason.contains("failed")
                    || reason.contains("probe"),
                "{reason}"
            ),
            OpenOutcome::Opened => panic!("damage in {name:?} went unnoticed"),
        }
        answers_google(&index);
    }
    assert!(damaged_names.len() >= 5, "{damaged_names:?}");
}

/// The index's JSON files carry no checksum (Tantivy's `meta.json` and `.managed.json`, and
/// guidebot's `guidebot-index.json`): a flipped byte in any of them either breaks the open, which
/// rebuilds and says why, or touches nothing the index reads. Either way nothing panics and the
/// answer is right. Three seeded bytes per file.
#[test]
fn a_damaged_byte_in_the_index_metadata_never_panics_and_the_answer_holds() {
    let corpus = bundled_corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let mut random = XorShift(0x2545_f491_4f6c_dd1d);
    let mut rebuilt = 0;
    for name in ["meta.json", ".managed.json", "guidebot-index.json"] {
        for _ in 0..3 {
            SearchIndex::build(&corpus, root.path()).expect("index builds");
            let target = generation(root.path()).join(name);
            let mut bytes = std::fs::read(&target).expect("the file is there");
            assert!(!bytes.is_empty(), "{name} is empty");
            let offset = (random.next() % bytes.len() as u64) as usize;
            bytes[offset] ^= 0x5a;
            std::fs::write(&target, &bytes).expect("write damage");

            let (index, outcome) = SearchIndex::open_or_build(&corpus, root.path())
                .unwrap_or_else(|error| panic!("{name} byte {offset}: {error}"));
            if let OpenOutcome::Built { reason } = outcome {
                assert!(!reason.is_empty());
                rebuilt += 1;
            }
            answers_google(&index);
        }
    }
    assert!(
        rebuilt >= 3,
        "only {rebuilt} of 9 damaged metadata files were noticed"
    );
}

/// Sets a file's or folder's modification time `idle` into the past.
fn idle_for(path: &Path, idle: std::time::Duration) {
    let at = std::time::SystemTime::now() - idle;
    let file = std::fs::File::open(path).expect("open to set its times");
    file.set_times(std::fs::FileTimes::new().set_modified(at).set_accessed(at))
        .expect("set its times");
}

/// Longer than the clean-up's grace for a generation no process opened.
const IDLE: std::time::Duration = std::time::Duration::from_secs(11 * 60);

/// Issue 14: a build's clean-up never removes a generation a process opened in the last minutes
/// (a server still reading it), however old its folder; one nobody opened for longer goes, and
/// the one `CURRENT` names stays. A reader of a removed generation keeps answering.
#[test]
fn clean_up_keeps_a_generation_opened_in_the_last_minutes_and_removes_an_idle_one() {
    let corpus = bundled_corpus();
    let root = tempfile::tempdir().expect("temp dir");
    SearchIndex::build(&corpus, root.path()).expect("index builds");
    let first = generation(root.path());
    idle_for(&first, IDLE);
    // Another process opens it now (its folder stays old: only the open marks it).
    let (reader, outcome) = SearchIndex::open_or_build(&corpus, root.path()).expect("opens");
    assert_eq!(outcome, OpenOutcome::Opened);
    idle_for(&first, IDLE);

    SearchIndex::build(&corpus, root.path()).expect("index builds");
    let second = generation(root.path());
    assert_ne!(second, first);
    assert!(
        first.is_dir(),
        "a generation opened moments ago was removed"
    );

    // Nobody opens either for longer than the grace: the next build's clean-up removes both
    // old ones and keeps its own.
    for path in [&first, &second] {
        for entry in std::fs::read_dir(path).expect("generation").flatten() {
            idle_for(&entry.path(), IDLE);
        }
        idle_for(path, IDLE);
    }
    SearchIndex::build(&corpus, root.path()).expect("index builds");
    let third = generation(root.path());
    assert!(!first.exists() && !second.exists(), "idle generations left");
    assert!(third.join("guidebot-index.json").is_file());
    answers_google(&reader);
    let (index, outcome) = SearchIndex::open_or_build(&corpus, root.path()).expect("opens");
    assert_eq!(outcome, OpenOutcome::Opened);
    answers_google(&index);
}

#[test]
fn two_builders_at_once_both_end_with_a_working_index() {
    let root = tempfile::tempdir().expect("temp dir");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let root = root.path().to_path_buf();
            std::thread::spawn(move || {
                let corpus = bundled_corpus();
                let index = SearchIndex::build(&corpus, &root).expect("build succeeds");
                answers_google(&index);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a builder thread");
    }
    let (index, _) =
        SearchIndex::open_or_build(&bundled_corpus(), root.path()).expect("index opens");
    answers_google(&index);
    assert!(generation(root.path()).exists());
}

/// `guidebot --corpus CORPUS --index INDEX ARGS...`, output captured.
fn guidebot_on(corpus: &Path, index: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guidebot"));
    command
        .arg("--corpus")
        .arg(corpus)
        .arg("--index")
        .arg(index)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// The search JSON of a successful `search --json` run; fails the test with its stderr otherwise.
fn search_json(output: std::process::Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "search failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!("search printed no JSON ({error}): {stderr}");
    })
}

/// The folders of builds in progress (or left by a killed one) in an index root.
fn build_folders(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with(".build-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Six `index --force` processes and three `search` processes started together on one index
/// folder (the issue's `for i in 1..6; do guidebot index --force & done`): every one succeeds,
/// `CURRENT` names a complete generation, no build folder is left behind, and a search answers.
#[test]
fn builders_in_separate_processes_never_delete_each_others_index() {
    let root = tempfile::tempdir().expect("temp dir");
    let index_dir = root.path().join("index");
    let corpus = bundled_corpus_dir();
    // A live generation for the searches to read while the builders replace and clean it up.
    let first = guidebot_on(&corpus, &index_dir, &["index"])
        .output()
        .expect("guidebot runs");
    assert!(first.status.success(), "{first:?}");
    let mut children = Vec::new();
    for round in 0..6 {
        let builder = guidebot_on(&corpus, &index_dir, &["index", "--force", "--json"]);
        children.push(("index --force", builder));
        if round % 2 == 0 {
            let search = guidebot_on(&corpus, &index_dir, &["search", "--json", QUESTION]);
            children.push(("search", search));
        }
    }
    // Every process is running before any is waited for.
    let running: Vec<_> = children
        .iter_mut()
        .map(|(name, command)| (*name, command.spawn().expect("guidebot starts")))
        .collect();
    assert_eq!(running.len(), 9);
    for (name, child) in running {
        let output = child.wait_with_output().expect("guidebot runs");
        assert!(
            output.status.success(),
            "{name} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        if name == "search" {
            let hits = search_json(output)["hits"].clone();
            assert_eq!(
                hits[0]["section_id"], "compensation-the-real-bands-at-mid",
                "{hits}"
            );
        }
    }
    assert!(generation(&index_dir).join("guidebot-index.json").exists());
    assert_eq!(build_folders(&index_dir), Vec::<PathBuf>::new());
    let after = search_json(
        guidebot_on(&corpus, &index_dir, &["search", "--json", QUESTION])
            .output()
            .expect("guidebot runs"),
    );
    assert_eq!(
        after["hits"][0]["section_id"],
        "compensation-the-real-bands-at-mid"
    );
}

/// Issue 14 as a user met it: one changed byte in a `.fieldnorm` file made every command exit 101
/// with a panic inside Tantivy. A `search` process now says why it rebuilds, answers, and exits 0;
/// the next one opens the repaired index without a word.
#[test]
fn a_search_over_a_damaged_fieldnorm_file_rebuilds_and_answers_without_a_panic() {
    let root = tempfile::tempdir().expect("temp dir");
    let index_dir = root.path().join("index");
    let corpus = bundled_corpus_dir();
    let built = guidebot_on(&corpus, &index_dir, &["index"])
        .output()
        .expect("guidebot runs");
    assert!(built.status.success(), "{built:?}");
    let damaged_generation = generation(&index_dir);
    support::setup::flip_a_bit_of_the_fieldnorm_file(&damaged_generation);

    let output = guidebot_on(&corpus, &index_dir, &["search", "--json", QUESTION])
        .output()
        .expect("guidebot runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("rebuilding the search index") && stderr.contains("checksum"),
        "the warning says why: {stderr}"
    );
    let hits = search_json(output)["hits"].clone();
    assert_eq!(
        hits[0]["section_id"], "compensation-the-real-bands-at-mid",
        "{hits}"
    );
    assert_ne!(generation(&index_dir), damaged_generation);

    let again = guidebot_on(&corpus, &index_dir, &["search", "--json", QUESTION])
        .output()
        .expect("guidebot runs");
    let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(!stderr.contains("rebuilding"), "{stderr}");
    assert_eq!(search_json(again)["hits"], hits);
}

/// Passages in the synthetic corpus a killed build works on: about five seconds to index in a
/// debug build, so the kill lands while the build folder is being written.
const SLOW_BUILD_PASSAGES: usize = 5_000;

/// A real `guidebot index --force` process killed with SIGKILL while it writes its build folder:
/// `CURRENT` still names the previous generation, a search from another process opens it as is
/// and answers as before, and the next build succeeds (the dead process's lock is gone with it).
#[test]
fn a_build_process_killed_with_sigkill_half_way_leaves_the_previous_generation_answering() {
    use std::os::unix::process::ExitStatusExt;
    let root = tempfile::tempdir().expect("temp dir");
    let corpus = root.path().join("corpus");
    let index_dir = root.path().join("index");
    guidebot::synthetic::write_synthetic_corpus(&bundled_corpus(), &corpus, SLOW_BUILD_PASSAGES)
        .expect("synthetic corpus");
    let built = guidebot_on(&corpus, &index_dir, &["index"])
        .output()
        .expect("guidebot runs");
    assert!(built.status.success(), "{built:?}");
    let live = generation(&index_dir);
    let before = search_json(
        guidebot_on(&corpus, &index_dir, &["search", "--json", QUESTION])
            .output()
            .expect("guidebot runs"),
    );
    assert_eq!(before["relevant"], true, "{before}");

    let mut builder = guidebot_on(&corpus, &index_dir, &["index", "--force"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("guidebot starts");
    // Half-way: its build folder exists (the corpus is read, documents are being written).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while build_folders(&index_dir).is_empty() {
        assert!(
            builder.try_wait().expect("waitable").is_none(),
            "the build finished before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no build folder appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    builder.kill().expect("SIGKILL");
    let status = builder.wait().expect("waitable");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert_eq!(
        generation(&index_dir),
        live,
        "CURRENT still names the old generation"
    );
    assert_eq!(
        build_folders(&index_dir).len(),
        1,
        "the killed build's folder is left"
    );

    let after = search_json(
        guidebot_on(&corpus, &index_dir, &["search", "--json", QUESTION])
            .output()
            .expect("guidebot runs"),
    );
    assert_eq!(after["hits"], before["hits"]);
    assert_eq!(
        generation(&index_dir),
        live,
        "the search opened it, no rebuild"
    );

    let rebuilt = guidebot_on(&corpus, &index_dir, &["index", "--force", "--json"])
        .output()
        .expect("guidebot runs");
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let fresh = generation(&index_dir);
    assert_ne!(fresh, live);
    assert!(fresh.join("guidebot-index.json").exists());
    let last = search_json(
        guidebot_on(&corpus, &index_dir, &["search", "--json", QUESTION])
            .output()
            .expect("guidebot runs"),
    );
    assert_eq!(last["hits"], before["hits"]);
}

#[test]
fn a_build_killed_half_way_leaves_the_previous_generation_answering() {
    let corpus = bundled_corpus();
    let root = tempfile::tempdir().expect("temp dir");
    SearchIndex::build(&corpus, root.path()).expect("index builds");
    let live = generation(root.path());
    // What a build killed by SIGKILL leaves: a half-written build folder and a generation folder
    // that was never made live (no metadata), plus a stray pointer file.
    let build = root.path().join(".build-99999-1");
    std::fs::create_dir(&build).expect("build folder");
    std::fs::write(build.join("meta.json"), b"{\"segm").expect("partial file");
    std::fs::create_dir(root.path().join("gen-deadbeef-2")).expect("orphan generation");
    std::fs::write(root.path().join(".CURRENT.99999-1"), b"gen-dead").expect("stray pointer");
    let (index, outcome) = SearchIndex::open_or_build(&corpus, root.path()).expect("opens");
    assert_eq!(outcome, OpenOutcome::Opened);
    answers_google(&index);
    assert_eq!(generation(root.path()), live);
}

#[test]
fn current_naming_a_missing_generation_is_rebuilt() {
    let corpus = bundled_corpus();
    let root = tempfile::tempdir().expect("temp dir");
    SearchIndex::build(&corpus, root.path()).expect("index builds");
    // The pointer swapped before its folder was in place (the order the build must never use).
    std::fs::write(root.path().join("CURRENT"), b"gen-missing-1").expect("pointer");
    let (index, outcome) = SearchIndex::open_or_build(&corpus, root.path()).expect("opens");
    assert!(matches!(outcome, OpenOutcome::Built { .. }));
    answers_google(&index);
}

#[test]
fn a_generation_deleted_under_an_open_reader_keeps_answering() {
    let corpus = bundled_corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let index = SearchIndex::build(&corpus, root.path()).expect("index builds");
    std::fs::remove_dir_all(generation(root.path())).expect("delete the live generation");
    answers_google(&index);
}

/// Makes folders unwritable for this process, root included (`chattr +i` for root, whom
/// permission bits do not stop; `chmod 555` otherwise), and writable again on drop.
struct Unwritable(Vec<PathBuf>);

impl Unwritable {
    fn new(folders: Vec<PathBuf>) -> Unwritable {
        let root = unsafe { libc::geteuid() } == 0;
        for folder in &folders {
            if root {
                let status = Command::new("chattr")
                    .arg("+i")
                    .arg(folder)
                    .status()
                    .expect("chattr runs (e2fsprogs) to make a folder read-only for root");
                assert!(status.success(), "chattr +i {}", folder.display());
            } else {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o555))
                    .expect("chmod 555");
            }
        }
        Unwritable(folders)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        for folder in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(folder).status();
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn an_intact_index_in_a_folder_nobody_may_write_is_opened_read_only() {
    let corpus = bundled_corpus();
    let root = tempfile::tempdir().expect("temp dir");
    SearchIndex::build(&corpus, root.path()).expect("index builds");
    let live = generation(root.path());
    let _locked = Unwritable::new(vec![live.clone(), root.path().to_path_buf()]);
    // The folders really are read-only here, so the case below is the one under test.
    assert!(std::fs::File::create(live.join("probe")).is_err());
    assert!(std::fs::File::create(root.path().join("probe")).is_err());
    let (index, outcome) = SearchIndex::open_or_build(&corpus, root.path())
        .expect("an intact index opens without writing to its folder");
    assert_eq!(outcome, OpenOutcome::Opened);
    answers_google(&index);
}

/// Issue 14 ("IO errors print their cause twice"): an error from the index library, with the
/// context a command adds, names its cause once when printed with its chain (`{:#}`, as the CLI
/// prints errors). Here: Tantivy opening an empty folder.
#[test]
fn an_index_library_error_names_its_cause_once() {
    let empty = tempfile::tempdir().unwrap();
    let error = tantivy::Index::open_in_dir(empty.path()).expect_err("no index in an empty folder");
    let cause = error.to_string();
    let error = anyhow::Error::new(guidebot::search::SearchError::from(error))
        .context("cannot open the index");
    let text = format!("{error:#}");
    assert_eq!(text.matches(cause.as_str()).count(), 1, "{text}");
}
