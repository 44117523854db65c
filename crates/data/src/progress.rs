//! Progress of long work: an indicatif bar on a terminal, plain lines (at most every 10 s and at
//! the end) when stderr is a file or a pipe, nothing when turned off. Safe to share across threads.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Counts finished items of a known total.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    start: Instant,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Off,
    Bar(ProgressBar),
    Lines(Mutex<Instant>),
}

/// Interval between plain progress lines.
const LINE_INTERVAL: Duration = Duration::from_secs(10);

impl Progress {
    /// Starts counting `total` items of work called `label`; `enabled: false` prints nothing.
    pub fn new(label: &str, total: usize, enabled: bool) -> Self {
        let mode = if !enabled || total == 0 {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
                )
                .expect("valid progress template"),
            );
            bar.set_message(label.to_string());
            Mode::Bar(bar)
        } else {
            Mode::Lines(Mutex::new(Instant::now()))
        };
        Self {
            label: label.to_string(),
            total: total as u64,
            done: AtomicU64::new(0),
            start: Instant::now(),
            mode,
        }
    }

    /// Marks `n` more items done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.mode {
            Mode::Off => {}
            Mode::Bar(bar) => bar.inc(n),
            Mode::Lines(last) => {
                let mut last = last.lock().expect("progress lock");
                if last.elapsed() >= LINE_INTERVAL && done < self.total {
                    *last = Instant::now();
                    eprintln!("{}", self.line(done));
                }
            }
        }
    }

    /// Ends the bar (or prints the final line).
    pub fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        match &self.mode {
            Mode::Off => {}
            Mode::Bar(bar) => bar.finish_and_clear(),
            Mode::Lines(_) => eprintln!("{}", self.line(done)),
        }
    }

    fn line(&self, done: u64) -> String {
        let secs = self.start.elapsed().as_secs_f64();
        format!(
            "{}: {done}/{} ({:.0}%) in {secs:.1} s, {:.1}/s",
            self.label,
            self.total,
            100.0 * done as f64 / self.total.max(1) as f64,
            done as f64 / secs.max(1e-9)
        )
    }
}
