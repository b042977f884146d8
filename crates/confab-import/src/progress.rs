//! How far an import is: a progress bar on a terminal (conversations done of the total when it is
//! known, messages, rate, ETA), a plain line every few seconds otherwise, or nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use parking_lot::Mutex;

/// Seconds between plain progress lines.
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub struct Progress {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    bar: Option<ProgressBar>,
    conversations: AtomicU64,
    total: AtomicU64,
    messages: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// A bar when standard error is a terminal, plain lines when it is not.
    pub fn stderr() -> Progress {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} conversations · {msg} · ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            inner: Some(Arc::new(Inner {
                bar,
                conversations: AtomicU64::new(0),
                total: AtomicU64::new(0),
                messages: AtomicU64::new(0),
                started: now,
                last_line: Mutex::new(now),
            })),
        }
    }

    /// No output (tests, `--json`).
    pub fn quiet() -> Progress {
        Progress::default()
    }

    /// The number of conversations, once known.
    pub fn total(&self, n: u64) {
        if let Some(i) = &self.inner {
            i.total.store(n, Ordering::Relaxed);
            if let Some(b) = &i.bar {
                b.set_length(n);
            }
        }
    }

    pub fn conversation_done(&self) {
        if let Some(i) = &self.inner {
            i.conversations.fetch_add(1, Ordering::Relaxed);
            self.update(i);
        }
    }

    pub fn messages(&self, n: u64) {
        if let Some(i) = &self.inner {
            i.messages.fetch_add(n, Ordering::Relaxed);
            self.update(i);
        }
    }

    /// Something worth a line of its own (a skipped record).
    pub fn note(&self, text: &str) {
        match self.inner.as_ref().map(|i| &i.bar) {
            Some(Some(b)) => b.println(text),
            Some(None) => eprintln!("{text}"),
            None => {}
        }
    }

    fn update(&self, i: &Inner) {
        let (c, m) = (i.conversations.load(Ordering::Relaxed), i.messages.load(Ordering::Relaxed));
        let rate = m as f64 / i.started.elapsed().as_secs_f64().max(0.001);
        match &i.bar {
            Some(b) => {
                b.set_position(c);
                b.set_message(format!("{m} messages ({rate:.0}/s)"));
            }
            None => {
                let mut last = i.last_line.lock();
                if last.elapsed() >= LINE_EVERY {
                    *last = Instant::now();
                    let total = i.total.load(Ordering::Relaxed);
                    let of = if total > 0 { format!(" of {total}") } else { String::new() };
                    eprintln!("import: {c}{of} conversations, {m} messages ({rate:.0}/s), {:.0}s", i.started.elapsed().as_secs_f64());
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(Some(b)) = self.inner.as_ref().map(|i| &i.bar) {
            b.finish_and_clear();
        }
    }
}
