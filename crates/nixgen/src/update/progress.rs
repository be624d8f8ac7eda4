//! Progress on a terminal as a bar, elsewhere as one line per plugin.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Progress;
use crate::name::PluginName;

#[derive(Debug)]
pub(super) struct Bar {
    mode: Progress,
    bar: Option<indicatif::ProgressBar>,
    total: AtomicU64,
    done: AtomicU64,
}

impl Bar {
    pub(super) fn new(mode: Progress, total: u64) -> Self {
        let bar = (mode == Progress::Bar).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Self {
            mode,
            bar,
            total: AtomicU64::new(total),
            done: AtomicU64::new(0),
        }
    }

    pub(super) fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.inc_length(n);
        }
    }

    /// One document done; `state` says how it went (`fetched`, `not found
    /// (404)`, `failed`).
    pub(super) fn tick(&self, name: &PluginName, state: &str) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match (&self.bar, self.mode) {
            (Some(b), _) => {
                b.set_message(name.to_string());
                b.inc(1);
            }
            (None, Progress::Lines) => {
                let total = self.total.load(Ordering::Relaxed);
                eprintln!("[{n}/{total}] {state} {name}");
            }
            _ => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
