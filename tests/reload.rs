//! Live corpus reload: concurrent queries lose nothing and only ever see a whole engine (old or new),
//! a broken guide keeps the previous answers and reports file and line, and each trigger (request,
//! SIGHUP, file watcher) swaps in the edited corpus. Waits are on the status channel with a bounded
//! timeout, never sleeps.

use guidebot::engine::{Engine, EngineConfig, EngineHandle};
use guidebot::reload::{
    reload_channel, watch_and_reload, ReloadOptions, ReloadStatus, ReloadTrigger,
};
use guidebot::search::SearchOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

const GUIDE: &str = "mid-level-ds-mle-guide-2026.md";
const MARKER: &str = "quokka";
const MARKER_QUERY: &str = "quokka onboarding ritual";
const COMMON_QUERY: &str = "how do I negotiate a senior promotion";
const TIMEOUT: Duration = Duration::from_secs(60);

struct Fixture {
    _dir: tempfile::TempDir,
    corpus: PathBuf,
    config: EngineConfig,
    handle: Arc<EngineHandle>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), corpus.join(entry.file_name())).unwrap();
    }
    let config = EngineConfig::new(&corpus, &dir.path().join("index"));
    let engine = Engine::open(&config).unwrap();
    Fixture {
        _dir: dir,
        corpus,
        config,
        handle: Arc::new(EngineHandle::new(engine)),
    }
}

impl Fixture {
    fn guide(&self) -> PathBuf {
        self.corpus.join(GUIDE)
    }

    /// Adds a section only the new corpus has.
    fn add_marker_section(&self) {
        let mut text = std::fs::read_to_string(self.guide()).unwrap();
        text.push_str(
            "\n\n## Quokka onboarding ritual\n\nEvery new hire joins the quokka onboarding ritual in the first week: \
             a pairing rotation with three senior engineers and a written review of one production incident.\n",
        );
        std::fs::write(self.guide(), text).unwrap();
    }

    /// Starts the reloader; dropping the returned sender stops it.
    fn start(
        &self,
        options: ReloadOptions,
    ) -> (
        ReloadTrigger,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let (trigger, requests) = reload_channel(&self.handle);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(watch_and_reload(
            Arc::clone(&self.handle),
            self.config.clone(),
            options,
            requests,
            async move {
                let _ = stopped.await;
            },
        ));
        (trigger, stop, task)
    }
}

fn no_auto_triggers() -> ReloadOptions {
    ReloadOptions {
        watch_debounce: None,
        sighup: false,
    }
}

/// Whether the engine's answer to the marker query contains the marker.
fn marker_found(engine: &Engine) -> bool {
    let results = engine
        .search(MARKER_QUERY, &SearchOptions { limit: 5 })
        .expect("marker query");
    results
        .hits
        .iter()
        .any(|hit| hit.text.to_lowercase().contains(MARKER))
}

async fn wait_for(
    status: &mut watch::Receiver<ReloadStatus>,
    what: &str,
    done: impl Fn(&ReloadStatus) -> bool,
) -> ReloadStatus {
    let waited = tokio::time::timeout(TIMEOUT, status.wait_for(|status| done(status)))
        .await
        .map(|result| result.map(|status| status.clone()));
    match waited {
        Ok(Ok(status)) => status,
        Ok(Err(_)) => panic!("the reloader stopped while waiting for {what}"),
        Err(_) => panic!(
            "timed out waiting for {what}; status {:?}",
            *status.borrow()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_under_concurrent_queries_loses_none_and_serves_whole_engines() {
    let fixture = fixture();
    let old_fingerprint = fixture.handle.current().fingerprint().to_string();
    let (trigger, _stop, _task) = fixture.start(no_auto_triggers());
    // A request that took its snapshot before the reload and finishes after it.
    let in_flight = fixture.handle.current();

    let stop = Arc::new(AtomicBool::new(false));
    let new_seen = Arc::new(AtomicUsize::new(0));
    let observed: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let handle = Arc::clone(&fixture.handle);
        let stop = Arc::clone(&stop);
        let new_seen = Arc::clone(&new_seen);
        let observed = Arc::clone(&observed);
        let old = old_fingerprint.clone();
        workers.push(tokio::spawn(async move {
            let mut queries = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let engine = handle.current();
                let common = engine
                    .search(COMMON_QUERY, &SearchOptions { limit: 5 })
                    .expect("every query succeeds during a reload");
                assert!(!common.hits.is_empty(), "a query lost its hits");
                let found = marker_found(&engine);
                let fingerprint = engine.fingerprint().to_string();
                if fingerprint != old {
                    new_seen.fetch_add(1, Ordering::Relaxed);
                }
                observed.lock().unwrap().push((fingerprint, found));
                queries += 2;
                tokio::task::yield_now().await;
            }
            queries
        }));
    }

    fixture.add_marker_section();
    let report = tokio::time::timeout(TIMEOUT, trigger.request())
        .await
        .expect("reload in time")
        .expect("reload succeeds");
    assert!(report.changed);
    assert_eq!(report.previous_fingerprint, old_fingerprint);
    let new_fingerprint = report.fingerprint.clone();
    assert_eq!(fixture.handle.current().fingerprint(), new_fingerprint);

    // Let every worker run on the new engine for a while, then stop them.
    let mut status = trigger.status();
    wait_for(&mut status, "the new fingerprint", |s| {
        s.fingerprint == new_fingerprint
    })
    .await;
    tokio::time::timeout(TIMEOUT, async {
        while new_seen.load(Ordering::Relaxed) < 40 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("workers see the new engine");
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("no worker failed");
    }
    assert!(total > 0);

    let observed = observed.lock().unwrap();
    let (mut olds, mut news) = (0, 0);
    for (fingerprint, found) in observed.iter() {
        if *fingerprint == old_fingerprint {
            assert!(!found, "the old engine answered with the new section");
            olds += 1;
        } else if *fingerprint == new_fingerprint {
            assert!(found, "the new engine lacks the new section");
            news += 1;
        } else {
            panic!("served an engine that is neither the old nor the new one: {fingerprint}");
        }
    }
    assert!(news >= 40, "olds {olds}, news {news}");

    // The request in flight finishes on the old engine although its index generation was replaced.
    assert_eq!(in_flight.fingerprint(), old_fingerprint);
    assert!(!marker_found(&in_flight));
    assert!(!in_flight
        .search(COMMON_QUERY, &SearchOptions { limit: 5 })
        .unwrap()
        .hits
        .is_empty());

    let status = trigger.status().borrow().clone();
    assert_eq!(status.successes, 1);
    assert_eq!(status.failures, 0);
    assert!(status.last_success_unix.is_some());
}

#[tokio::test]
async fn a_broken_guide_keeps_the_previous_answers_and_reports_file_and_line() {
    let fixture = fixture();
    let before = fixture.handle.current();
    let before_hits = before
        .search(COMMON_QUERY, &SearchOptions { limit: 5 })
        .unwrap();
    let (trigger, _stop, _task) = fixture.start(no_auto_triggers());

    let good = std::fs::read_to_string(fixture.guide()).unwrap();
    std::fs::write(
        fixture.guide(),
        good.replace("year = 2026", "year = \"soon\""),
    )
    .unwrap();
    let error = tokio::time::timeout(TIMEOUT, trigger.request())
        .await
        .unwrap()
        .unwrap_err();
    let at = error
        .find(&format!("{GUIDE}:"))
        .unwrap_or_else(|| panic!("the error names no file: {error}"));
    let line: String = error[at + GUIDE.len() + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(line, "5", "{error}");
    assert!(
        error.contains("still serving the previous guides"),
        "{error}"
    );

    let after = fixture.handle.current();
    assert_eq!(after.fingerprint(), before.fingerprint());
    let after_hits = after
        .search(COMMON_QUERY, &SearchOptions { limit: 5 })
        .unwrap();
    assert_eq!(
        after_hits
            .hits
            .iter()
            .map(|hit| &hit.text)
            .collect::<Vec<_>>(),
        before_hits
            .hits
            .iter()
            .map(|hit| &hit.text)
            .collect::<Vec<_>>()
    );
    let status = trigger.status().borrow().clone();
    assert_eq!(status.failures, 1);
    assert_eq!(status.successes, 0);
    assert!(status.last_error.as_deref().unwrap().contains(GUIDE));
    assert!(status.last_failure_unix.is_some());
    assert_eq!(status.fingerprint, before.fingerprint());

    // Fixing the file and reloading again recovers and clears the error.
    std::fs::write(fixture.guide(), &good).unwrap();
    fixture.add_marker_section();
    let report = trigger.request().await.unwrap();
    assert!(report.changed);
    assert!(marker_found(&fixture.handle.current()));
    let status = trigger.status().borrow().clone();
    assert_eq!(status.last_error, None);
    assert_eq!((status.successes, status.failures), (1, 1));
}

#[tokio::test]
async fn requests_queued_during_a_reload_are_answered_and_a_stopped_reloader_says_so() {
    let fixture = fixture();
    let (trigger, stop, task) = fixture.start(no_auto_triggers());
    let first = trigger.request();
    let second = trigger.request();
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(!first.changed && !second.changed);
    drop(stop);
    task.await.unwrap();
    let error = trigger.request().await.unwrap_err();
    assert!(error.contains("not running"), "{error}");
}

#[tokio::test]
async fn sighup_reloads() {
    let fixture = fixture();
    let old = fixture.handle.current().fingerprint().to_string();
    let (trigger, _stop, _task) = fixture.start(ReloadOptions {
        watch_debounce: None,
        sighup: true,
    });
    let mut status = trigger.status();
    wait_for(&mut status, "the SIGHUP handler", |s| {
        s.listening.contains(&"sighup")
    })
    .await;
    fixture.add_marker_section();
    // SAFETY: sending a signal to our own process; the reloader's handler is installed.
    let sent = unsafe { libc::kill(std::process::id() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(sent, 0);
    let status = wait_for(&mut status, "a reload after SIGHUP", |s| {
        s.fingerprint != old
    })
    .await;
    assert_eq!(status.successes, 1);
    assert_eq!(fixture.handle.current().fingerprint(), status.fingerprint);
    assert!(marker_found(&fixture.handle.current()));
}

#[tokio::test]
async fn the_watcher_picks_up_an_edit() {
    let fixture = fixture();
    let old = fixture.handle.current().fingerprint().to_string();
    let (trigger, _stop, _task) = fixture.start(ReloadOptions {
        watch_debounce: Some(Duration::from_millis(100)),
        sighup: false,
    });
    let mut status = trigger.status();
    wait_for(&mut status, "the watcher", |s| {
        s.listening.contains(&"watcher")
    })
    .await;
    fixture.add_marker_section();
    let status = wait_for(&mut status, "a reload after the edit", |s| {
        s.fingerprint != old && !s.in_progress
    })
    .await;
    assert_eq!(fixture.handle.current().fingerprint(), status.fingerprint);
    assert!(marker_found(&fixture.handle.current()));
    assert_eq!(status.failures, 0);
}
