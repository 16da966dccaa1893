//! Progress of one training run on stderr: a live bar on a terminal, otherwise a
//! plain line at most every few seconds (and always the last one); nothing when
//! quiet.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    label: String,
    total: u64,
    bar: Option<ProgressBar>,
    plain: bool,
    last_line: Option<Instant>,
}

impl Progress {
    pub fn new(label: String, total_epochs: i64, quiet: bool) -> Progress {
        let total = total_epochs.max(0) as u64;
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{prefix} {bar:25} epoch {pos}/{len} {msg} [{elapsed_precise} < {eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.clone());
            bar
        });
        Progress {
            label,
            total,
            bar,
            plain: !quiet && !terminal,
            last_line: None,
        }
    }

    pub fn epoch(&mut self, epoch: i64, status: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(epoch as u64);
            bar.set_message(status.to_string());
        } else if self.plain && self.last_line.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            self.line(epoch, status);
        }
    }

    /// Clears the bar and leaves one line with the run's outcome.
    pub fn finish(&mut self, epoch: i64, status: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.bar.is_some() || self.plain {
            self.line(epoch, status);
        }
    }

    fn line(&mut self, epoch: i64, status: &str) {
        eprintln!("{} epoch {epoch}/{} {status}", self.label, self.total);
        self.last_line = Some(Instant::now());
    }
}
