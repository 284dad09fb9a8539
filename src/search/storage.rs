//! The index on disk: generations built in a temporary folder and renamed into place, a `CURRENT`
//! pointer swapped atomically, and a metadata file holding the corpus fingerprint.
//!
//! Layout of `--index DIR`: `CURRENT` (the name of the live generation), `gen-<fingerprint>-<nanos>/`
//! (Tantivy's files plus `guidebot-index.json`), and `.build-*` folders of builds in progress. A crash
//! at any step leaves either the old generation live or no `CURRENT`, which the next command rebuilds.

use super::{schema, write_documents, SearchError, SearchIndex, SCHEMA_VERSION};
use crate::corpus::Corpus;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tantivy::Index;

const CURRENT_FILE: &str = "CURRENT";
const META_FILE: &str = "guidebot-index.json";
const GENERATION_PREFIX: &str = "gen-";
const BUILD_PREFIX: &str = ".build-";
/// The builders' lock file in an index folder.
const LOCK_FILE: &str = ".lock";
/// Touched in a generation each time a process opens it.
const OPENED_FILE: &str = "last-opened";
/// A generation opened more recently than this is never removed by another process's clean-up.
const RECENT_USE: Duration = Duration::from_secs(10 * 60);
/// A build folder older than this is left over from a crash and may be removed.
const STALE_BUILD_AGE: Duration = Duration::from_secs(15 * 60);

/// Where an open index lives: the root given by `--index` and the generation folder inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexLocation {
    pub root: PathBuf,
    pub generation: PathBuf,
}

/// What `open_or_build` did, so commands can tell the user when they waited for a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OpenOutcome {
    /// The index on disk matched the corpus and was opened as is.
    Opened,
    /// The index was (re)built; `reason` says why (missing, corpus changed, unreadable).
    Built { reason: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct IndexMeta {
    fingerprint: String,
    schema_version: u32,
    passages: u64,
    built_at_unix: u64,
    guidebot_version: String,
}

pub(super) fn open_or_build(
    corpus: &Corpus,
    root: &Path,
) -> Result<(SearchIndex, OpenOutcome), SearchError> {
    // Readers take no lock. A reader that loses a race with another process's clean-up (the
    // generation it read in CURRENT is gone by the time it opens it) reads CURRENT again, once.
    let first = try_open(corpus, root);
    let reason = match first {
        Ok(index) => return Ok((index, OpenOutcome::Opened)),
        Err(reason) => match try_open(corpus, root) {
            Ok(index) => return Ok((index, OpenOutcome::Opened)),
            Err(_) => reason,
        },
    };
    if !reason.starts_with("no index") {
        tracing::warn!(%reason, index = %root.display(), "rebuilding the search index");
    }
    // One builder at a time per index folder; the one that waited may find the index built.
    let _lock = IndexLock::acquire(root)?;
    if let Ok(index) = try_open(corpus, root) {
        return Ok((index, OpenOutcome::Opened));
    }
    let index = build_locked(corpus, root)?;
    Ok((index, OpenOutcome::Built { reason }))
}

/// An exclusive advisory lock on an index folder's `.lock` file, held while building and
/// cleaning up, so processes sharing the folder never delete each other's work.
struct IndexLock {
    file: std::fs::File,
}

impl IndexLock {
    fn acquire(root: &Path) -> Result<IndexLock, SearchError> {
        std::fs::create_dir_all(root).map_err(|error| {
            SearchError::io(
                format!("cannot create index folder {}", root.display()),
                error,
            )
        })?;
        let path = root.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| {
                SearchError::io(
                    format!(
                        "cannot write the index lock {} (is the index folder writable?)",
                        path.display()
                    ),
                    error,
                )
            })?;
        file.lock()
            .map_err(|error| SearchError::io(format!("cannot lock {}", path.display()), error))?;
        Ok(IndexLock { file })
    }
}

impl Drop for IndexLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
thread_local! {
    /// Test hook: runs once, on this thread, between reading `CURRENT` and opening the generation
    /// it names, so a unit test can make a reader lose the race with another process's build and
    /// clean-up at exactly that point. Compiled into tests only.
    static AFTER_READING_CURRENT: std::cell::RefCell<Option<Box<dyn FnOnce()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Opens the live generation if it matches the corpus and is intact; the error says why it
/// cannot be used. Checks, in order: `CURRENT`, the metadata (schema and corpus fingerprint), every
/// file's checksum, and a probe query; a panic inside the index library is caught and reported.
fn try_open(corpus: &Corpus, root: &Path) -> Result<SearchIndex, String> {
    let current = std::fs::read_to_string(root.join(CURRENT_FILE))
        .map_err(|_| format!("no index in {} yet", root.display()))?;
    let generation = root.join(current.trim());
    #[cfg(test)]
    if let Some(hook) = AFTER_READING_CURRENT.with(|hook| hook.borrow_mut().take()) {
        hook();
    }
    let meta_path = generation.join(META_FILE);
    let meta_text = std::fs::read_to_string(&meta_path).map_err(|error| {
        format!(
            "index metadata {} unreadable ({error})",
            meta_path.display()
        )
    })?;
    let meta: IndexMeta = serde_json::from_str(&meta_text).map_err(|error| {
        format!(
            "index metadata {} unreadable ({error})",
            meta_path.display()
        )
    })?;
    if meta.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "index schema {} differs from this build's {}",
            meta.schema_version, SCHEMA_VERSION
        ));
    }
    if meta.fingerprint != corpus.fingerprint {
        return Err("the corpus changed since the index was built".to_string());
    }
    let location = IndexLocation {
        root: root.to_path_buf(),
        generation: generation.clone(),
    };
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        open_verified(corpus, &generation, meta.fingerprint.clone(), location)
    }))
    .unwrap_or_else(|panic| {
        Err(format!(
            "the index library failed on {} ({})",
            generation.display(),
            panic_message(&panic)
        ))
    })?;
    mark_opened(&generation);
    Ok(opened)
}

/// Opens a generation folder, checks every file's checksum and runs a probe query.
fn open_verified(
    corpus: &Corpus,
    generation: &Path,
    fingerprint: String,
    location: IndexLocation,
) -> Result<SearchIndex, String> {
    let unreadable = |error: &dyn std::fmt::Display| {
        format!("index in {} unreadable ({error})", generation.display())
    };
    let index = if is_writable(generation) {
        Index::open_in_dir(generation).map_err(|error| unreadable(&error))?
    } else {
        // Tantivy writes a lock file next to the index when a reader opens it: a read-only folder
        // is read into memory instead.
        open_in_memory(generation).map_err(|error| unreadable(&error))?
    };
    let (_, fields) = schema();
    if index.schema() != schema().0 {
        return Err("index schema does not match".to_string());
    }
    let damaged = index
        .validate_checksum()
        .map_err(|error| unreadable(&error))?;
    if !damaged.is_empty() {
        let mut names: Vec<String> = damaged
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        names.sort();
        return Err(format!(
            "index files fail their checksum ({})",
            names.join(", ")
        ));
    }
    let opened = SearchIndex::from_index(index, fields, fingerprint, corpus, Some(location))
        .map_err(|error| format!("index unreadable ({error})"))?;
    opened
        .probe()
        .map_err(|error| format!("index probe failed ({error})"))?;
    Ok(opened)
}

/// Whether files can be created in `dir`.
fn is_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// Reads every file of a generation into a RAM directory and opens the index from it.
fn open_in_memory(generation: &Path) -> tantivy::Result<Index> {
    use tantivy::directory::{Directory, RamDirectory};
    let directory = RamDirectory::create();
    for entry in std::fs::read_dir(generation)?.flatten() {
        let path = entry.path();
        // Tantivy's lock files (`.tantivy-meta.lock`, …) stay on disk after a build; in a RAM
        // directory a lock file that exists is a lock held, and opening fails with LockBusy.
        let is_lock = path
            .extension()
            .is_some_and(|extension| extension == "lock");
        if !path.is_file() || is_lock {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let name = PathBuf::from(entry.file_name());
        directory.atomic_write(&name, &bytes)?;
    }
    Index::open(directory)
}

/// Records that a generation was opened now, so other processes' clean-ups leave it alone for a
/// while (best effort: a read-only folder has nothing to record and nothing to clean).
fn mark_opened(generation: &Path) {
    let _ = std::fs::write(generation.join(OPENED_FILE), b"");
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| message.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

pub(super) fn build(corpus: &Corpus, root: &Path) -> Result<SearchIndex, SearchError> {
    let _lock = IndexLock::acquire(root)?;
    build_locked(corpus, root)
}

/// Builds a generation and swaps `CURRENT` to it; the caller holds the folder's lock.
fn build_locked(corpus: &Corpus, root: &Path) -> Result<SearchIndex, SearchError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    let build_dir = root.join(format!("{BUILD_PREFIX}{}-{nanos}", std::process::id()));
    std::fs::create_dir(&build_dir).map_err(|error| {
        SearchError::io(
            format!("cannot create build folder {}", build_dir.display()),
            error,
        )
    })?;
    let result = build_into(corpus, root, &build_dir, nanos);
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&build_dir);
    }
    result
}

fn build_into(
    corpus: &Corpus,
    root: &Path,
    build_dir: &Path,
    nanos: u128,
) -> Result<SearchIndex, SearchError> {
    let (schema, fields) = schema();
    let index = Index::create_in_dir(build_dir, schema)?;
    write_documents(&index, fields, corpus)?;
    let meta = IndexMeta {
        fingerprint: corpus.fingerprint.clone(),
        schema_version: SCHEMA_VERSION,
        passages: corpus.passages().count() as u64,
        built_at_unix: (nanos / 1_000_000_000) as u64,
        guidebot_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let meta_json = serde_json::to_string_pretty(&meta).map_err(|error| SearchError::Metadata {
        path: build_dir.join(META_FILE),
        message: error.to_string(),
    })?;
    write_synced(&build_dir.join(META_FILE), meta_json.as_bytes())?;
    drop(index);

    let short_fingerprint: String = corpus.fingerprint.chars().take(12).collect();
    let generation_name = format!("{GENERATION_PREFIX}{short_fingerprint}-{nanos}");
    let generation = publish(root, build_dir, &generation_name, nanos)?;
    remove_old_generations(root, &generation_name);

    let index = Index::open_in_dir(&generation)?;
    let location = IndexLocation {
        root: root.to_path_buf(),
        generation,
    };
    SearchIndex::from_index(
        index,
        fields,
        corpus.fingerprint.clone(),
        corpus,
        Some(location),
    )
}

/// Makes a finished build live as `generation_name`: the folder is renamed into place first and
/// `CURRENT` swapped to it last, so `CURRENT` only ever names a complete generation. A failure at
/// either step leaves the previous generation live.
fn publish(
    root: &Path,
    build_dir: &Path,
    generation_name: &str,
    nanos: u128,
) -> Result<PathBuf, SearchError> {
    let generation = root.join(generation_name);
    std::fs::rename(build_dir, &generation).map_err(|error| {
        SearchError::io(
            format!("cannot move the new index into {}", generation.display()),
            error,
        )
    })?;
    // Swap the pointer last: until this rename, readers still see the previous generation.
    let pointer_tmp = root.join(format!(".{CURRENT_FILE}.{}-{nanos}", std::process::id()));
    write_synced(&pointer_tmp, generation_name.as_bytes())?;
    std::fs::rename(&pointer_tmp, root.join(CURRENT_FILE)).map_err(|error| {
        SearchError::io(
            format!("cannot update {}/{CURRENT_FILE}", root.display()),
            error,
        )
    })?;
    Ok(generation)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SearchError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)
        .map_err(|error| SearchError::io(format!("cannot write {}", path.display()), error))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|error| SearchError::io(format!("cannot write {}", path.display()), error))
}

/// Removes generations other than the live one that no process opened in the last minutes, and
/// build folders left by crashed builds. The caller holds the folder's lock. Open readers of an old
/// generation keep working either way: their files stay mapped until they are dropped.
fn remove_old_generations(root: &Path, live: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let age = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_old_generation = name.starts_with(GENERATION_PREFIX)
            && name != live
            && age(&path.join(OPENED_FILE))
                .or_else(|| age(&path))
                .is_none_or(|age| age > RECENT_USE);
        let is_stale_build =
            name.starts_with(BUILD_PREFIX) && age(&path).is_some_and(|age| age > STALE_BUILD_AGE);
        if is_old_generation || is_stale_build {
            if let Err(error) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), %error, "could not remove an old index folder");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundled() -> Corpus {
        Corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"))
            .expect("the bundled guides load")
    }

    fn current(root: &Path) -> String {
        std::fs::read_to_string(root.join(CURRENT_FILE))
            .expect("CURRENT exists")
            .trim()
            .to_string()
    }

    /// Issue 14: a reader that loses a race retries once. Between its reading `CURRENT` and
    /// opening the generation named there, another process (still holding the folder's build
    /// lock) publishes a new generation and removes the one the reader read: the reader reads
    /// `CURRENT` again and opens the new one at once, neither waiting for the builder's lock nor
    /// rebuilding. Without the retry it would queue behind the lock (here: never served).
    #[test]
    fn a_reader_that_loses_the_race_with_a_clean_up_reads_current_again_and_opens() {
        let corpus = bundled();
        let root = tempfile::tempdir().expect("temp dir");
        build(&corpus, root.path()).expect("the first build");
        let raced = current(root.path());
        let builder_lock = IndexLock::acquire(root.path()).expect("the other builder's lock");

        let (done, result) = std::sync::mpsc::channel();
        let root_path = root.path().to_path_buf();
        let reader = std::thread::spawn(move || {
            let hook_root = root_path.clone();
            AFTER_READING_CURRENT.with(|hook| {
                *hook.borrow_mut() = Some(Box::new(move || {
                    // The other process: a new generation of the same corpus goes live, and the
                    // one the reader just read in CURRENT is removed.
                    let newer = hook_root.join("gen-newer-1");
                    let raced_path = hook_root.join(&raced);
                    std::fs::create_dir(&newer).expect("new generation folder");
                    for entry in std::fs::read_dir(&raced_path)
                        .expect("generation")
                        .flatten()
                    {
                        std::fs::copy(entry.path(), newer.join(entry.file_name())).expect("copy");
                    }
                    std::fs::write(hook_root.join(CURRENT_FILE), "gen-newer-1").expect("CURRENT");
                    std::fs::remove_dir_all(&raced_path).expect("remove the raced generation");
                }));
            });
            let opened = open_or_build(&corpus, &root_path).map(|(index, outcome)| {
                let generation = index.location().map(|at| at.generation.clone());
                let answers = index
                    .search(
                        "whats the TC for a google L4 MLE?",
                        &super::super::SearchOptions::default(),
                    )
                    .is_ok_and(|results| !results.hits.is_empty());
                (outcome, generation, answers)
            });
            let _ = done.send(opened.map_err(|error| error.to_string()));
        });
        // A bound, not a pause: the retry opens in well under a second; without it the reader
        // waits for the lock this test holds.
        let opened = result.recv_timeout(std::time::Duration::from_secs(60));
        drop(builder_lock);
        let _ = reader.join();
        let (outcome, generation, answers) = opened
            .expect("the reader opened without waiting for the builder's lock")
            .expect("the reader opens");
        assert_eq!(
            outcome,
            OpenOutcome::Opened,
            "no rebuild: CURRENT was read again"
        );
        assert_eq!(generation, Some(root.path().join("gen-newer-1")));
        assert!(answers);
        assert_eq!(current(root.path()), "gen-newer-1");
    }

    /// Issue 14 ("verify the index on open: checksums, the corpus fingerprint and a quick probe
    /// query"): an index whose files are intact and whose metadata names the corpus, but which
    /// does not hold that corpus (here another corpus's index, its fingerprint copied), fails the
    /// probe and is not opened. Without the probe it would be served, finding nothing.
    #[test]
    fn an_intact_index_that_cannot_answer_its_corpus_fails_the_probe() {
        let bundled = bundled();
        let root = tempfile::tempdir().expect("temp dir");
        build(&bundled, root.path()).expect("the bundled guides' index");
        let other_dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            other_dir.path().join("other.md"),
            "# Zqxvarnish pelmorquat\n\nVrindlethorp quazzimodic flenstrabulous.\n",
        )
        .expect("a guide");
        let mut other = Corpus::load(other_dir.path()).expect("the other guide loads");
        other.fingerprint = bundled.fingerprint.clone();
        let error = try_open(&other, root.path()).expect_err("the probe finds nothing");
        assert!(error.contains("probe"), "{error}");
        try_open(&bundled, root.path()).expect("the index opens for its own corpus");
    }

    /// Issue 14, the order of the swap: a build whose folder cannot be moved into place (here it
    /// is gone) fails, and `CURRENT` still names the previous generation, which opens and answers.
    /// Swapping the pointer before the folder is in place fails this test.
    #[test]
    fn a_build_that_fails_to_move_into_place_leaves_current_on_the_previous_generation() {
        let corpus = bundled();
        let root = tempfile::tempdir().expect("temp dir");
        build(&corpus, root.path()).expect("the first build");
        let live = current(root.path());

        let missing = root.path().join(format!("{BUILD_PREFIX}gone-1"));
        let failed = publish(root.path(), &missing, "gen-never-1", 1);
        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(current(root.path()), live);
        assert!(!root.path().join("gen-never-1").exists());
        let index = try_open(&corpus, root.path()).expect("the previous generation opens");
        let results = index
            .search(
                "whats the TC for a google L4 MLE?",
                &super::super::SearchOptions::default(),
            )
            .expect("it answers");
        assert_eq!(
            results.hits.first().map(|hit| hit.section_id.as_str()),
            Some("compensation-the-real-bands-at-mid")
        );

        // A build folder that is in place is published: the folder first, then the pointer.
        let ready = root.path().join(format!("{BUILD_PREFIX}ready-2"));
        std::fs::create_dir(&ready).expect("build folder");
        let published = publish(root.path(), &ready, "gen-ready-2", 2).expect("published");
        assert_eq!(published, root.path().join("gen-ready-2"));
        assert!(published.is_dir() && !ready.exists());
        assert_eq!(current(root.path()), "gen-ready-2");
    }
}
