//! Progress output for long work: a bar on a terminal, a log line every tenth otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: parking_lot::Mutex<Option<ProgressBar>>,
    total: AtomicU64,
    done: AtomicU64,
    enabled: bool,
}

impl Progress {
    /// Progress shown to the user of a command: a bar when standard error is a terminal.
    pub fn visible() -> Progress {
        Progress {
            bar: parking_lot::Mutex::new(None),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            enabled: true,
        }
    }

    /// No progress output, for the server's own catch-up on start.
    pub fn hidden() -> Progress {
        Progress { enabled: false, ..Progress::visible() }
    }

    pub fn start(&self, total: u64, message: &'static str) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        if self.enabled && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total).with_message(message);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
                    .expect("the template is valid")
                    .progress_chars("=> "),
            );
            *self.bar.lock() = Some(bar);
        } else if self.enabled {
            tracing::info!(total, "{message}");
        }
    }

    pub fn advance(&self, count: u64) {
        let before = self.done.fetch_add(count, Ordering::Relaxed);
        if let Some(bar) = &*self.bar.lock() {
            bar.inc(count);
            return;
        }
        let total = self.total.load(Ordering::Relaxed).max(1);
        let after = before + count;
        if self.enabled && (before * 10 / total) != (after * 10 / total) {
            tracing::info!(done = after, total, "progress {}%", after * 100 / total);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().take() {
            bar.finish_and_clear();
        }
    }
}
