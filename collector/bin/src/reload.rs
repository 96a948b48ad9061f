//! What makes the daemon read its configuration again: SIGHUP, and with `--watch` (or
//! `service.watch_config: true`) a change of the file.
//!
//! The watch polls: every second it reads the file through its path and compares the bytes with the last
//! ones seen. Reading through the path follows whatever it points to now, so a Kubernetes ConfigMap update
//! (the `..data` symlink swapped to a new directory, the file itself a symlink through it) is seen like an
//! edit in place, and no inotify watch can be left on a directory that was swapped away. A file missing or
//! unreadable for a moment during the swap is read again at the next poll. A config file is small: reading
//! it once a second costs nothing, and comparing bytes misses no edit that keeps the size and the mtime.
//!
//! Requests coalesce: while one waits, another adds nothing, since the reload that waits reads the file as
//! it is when it runs.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

/// How often the watch reads the file.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// Starts the triggers (on the current tokio runtime) and returns where their requests arrive, each
/// saying why (`SIGHUP`, `file changed`). `watch`: the file to poll, if watching.
pub fn requests(watch: Option<PathBuf>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    tokio::spawn(on_sighup(tx.clone()));
    if let Some(path) = watch {
        tokio::spawn(watch_file(path, POLL_EVERY, tx));
    }
    rx
}

#[cfg(unix)]
async fn on_sighup(requests: mpsc::Sender<String>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(e) => {
            tracing::error!(error = %e, "Cannot watch SIGHUP; the configuration will not be reloaded on it.");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        let _ = requests.try_send("SIGHUP".to_owned());
    }
}

/// Asks for a reload whenever the bytes read through `path` change.
async fn watch_file(path: PathBuf, every: Duration, requests: mpsc::Sender<String>) {
    tracing::info!(path = %path.display(), every = ?every, "Watching the configuration file.");
    let mut last = tokio::fs::read(&path).await.ok();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(now) = tokio::fs::read(&path).await else {
            continue; // mid-swap, or removed: look again at the next poll
        };
        if last.as_deref() != Some(now.as_slice()) {
            last = Some(now);
            if requests.is_closed() {
                return;
            }
            let _ = requests.try_send("file changed".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How Kubernetes mounts a ConfigMap: `otlake.yaml -> ..data/otlake.yaml`, `..data -> ..<timestamp>`;
    /// an update writes a new timestamped directory and renames a new `..data` link over the old one.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_configmap_symlink_swap_is_a_change_and_an_unchanged_file_is_not() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("tempdir");
        let version = |name: &str, text: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).expect("dir");
            std::fs::write(d.join("otlake.yaml"), text).expect("write");
        };
        version("..2026_01", "a: 1\n");
        symlink("..2026_01", dir.path().join("..data")).expect("link");
        symlink("..data/otlake.yaml", dir.path().join("otlake.yaml")).expect("link");

        let (tx, mut rx) = mpsc::channel(1);
        tokio::spawn(watch_file(
            dir.path().join("otlake.yaml"),
            Duration::from_millis(20),
            tx,
        ));
        // Several polls of the same bytes (the same content rewritten counts as unchanged too).
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::write(dir.path().join("..2026_01/otlake.yaml"), "a: 1\n").expect("rewrite");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err(), "nothing changed yet");

        version("..2026_02", "a: 2\n");
        symlink("..2026_02", dir.path().join("..data_tmp")).expect("link");
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).expect("swap");
        std::fs::remove_dir_all(dir.path().join("..2026_01")).expect("old version goes");
        let why = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the swap is seen within 10 s");
        assert_eq!(why.as_deref(), Some("file changed"));
    }
}
