//! Fault injection on the index folder: damaged files, builders racing each other, a build killed
//! half-way, a generation deleted under a reader. Each case must end with a correct answer and no
//! panic escaping; damage is repaired by a rebuild that says why. Seeded and bounded: no sleeps.

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

#[test]
fn builders_in_separate_processes_never_delete_each_others_index() {
    let root = tempfile::tempdir().expect("temp dir");
    let index_dir = root.path().join("index");
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_guidebot"))
                .arg("--corpus")
                .arg(bundled_corpus_dir())
                .arg("--index")
                .arg(&index_dir)
                .args(["index", "--force"])
                .output()
        })
        .collect();
    for child in children {
        let output = child.expect("guidebot runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Searches right after, from other processes, all succeed.
    for _ in 0..6 {
        let output = Command::new(env!("CARGO_BIN_EXE_guidebot"))
            .arg("--corpus")
            .arg(bundled_corpus_dir())
            .arg("--index")
            .arg(&index_dir)
            .args(["search", "--json", QUESTION])
            .output()
            .expect("guidebot runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(generation(&index_dir).join("guidebot-index.json").exists());
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
