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
    match try_open(corpus, root) {
        Ok(index) => Ok((index, OpenOutcome::Opened)),
        Err(reason) => {
            let index = build(corpus, root)?;
            Ok((index, OpenOutcome::Built { reason }))
        }
    }
}

/// Opens the live generation if it matches the corpus; the error says why it cannot be used.
fn try_open(corpus: &Corpus, root: &Path) -> Result<SearchIndex, String> {
    let current = std::fs::read_to_string(root.join(CURRENT_FILE))
        .map_err(|_| format!("no index in {} yet", root.display()))?;
    let generation = root.join(current.trim());
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
    let index = Index::open_in_dir(&generation)
        .map_err(|error| format!("index in {} unreadable ({error})", generation.display()))?;
    let (_, fields) = schema();
    if index.schema() != schema().0 {
        return Err("index schema does not match".to_string());
    }
    let location = IndexLocation {
        root: root.to_path_buf(),
        generation,
    };
    SearchIndex::from_index(index, fields, meta.fingerprint, corpus, Some(location))
        .map_err(|error| format!("index unreadable ({error})"))
}

pub(super) fn build(corpus: &Corpus, root: &Path) -> Result<SearchIndex, SearchError> {
    std::fs::create_dir_all(root).map_err(|error| {
        SearchError::io(
            format!("cannot create index folder {}", root.display()),
            error,
        )
    })?;
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
    let generation = root.join(&generation_name);
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

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SearchError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)
        .map_err(|error| SearchError::io(format!("cannot write {}", path.display()), error))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|error| SearchError::io(format!("cannot write {}", path.display()), error))
}

/// Removes generations other than the live one, and build folders left by crashed builds. Open
/// readers of an old generation keep working: their files stay mapped until they are dropped.
fn remove_old_generations(root: &Path, live: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_old_generation = name.starts_with(GENERATION_PREFIX) && name != live;
        let is_stale_build = name.starts_with(BUILD_PREFIX)
            && entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > STALE_BUILD_AGE);
        if is_old_generation || is_stale_build {
            if let Err(error) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(path = %entry.path().display(), %error, "could not remove an old index folder");
            }
        }
    }
}
