//! The progress bar on stderr while a bench runs (`indicatif`, hidden when stderr is not a
//! terminal or when disabled), updated at most ten times a second so that drawing it never
//! shows up in a profile of the loader.

use std::cell::Cell;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the bar is worth updating.
const REFRESH: Duration = Duration::from_millis(100);

/// A progress bar, or nothing.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
    last: Cell<Instant>,
}

impl Progress {
    /// A bar on stderr when `enabled`, else a hidden one.
    pub(crate) fn new(enabled: bool) -> Self {
        let bar = if enabled {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10))
        } else {
            ProgressBar::hidden()
        };
        Self {
            bar,
            last: Cell::new(Instant::now()),
        }
    }

    /// Starts a phase counting up to `len` (e.g. connections opened).
    pub(crate) fn count(&self, what: &str, len: u64) {
        self.restyle(
            what,
            len,
            "{prefix:>12} [{bar:40}] {pos}/{len} {msg} ({elapsed})",
        );
    }

    /// Starts a timed phase of `duration` (the position is in milliseconds).
    pub(crate) fn timed(&self, what: &str, duration: Duration) {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.restyle(
            what,
            ms,
            "{prefix:>12} [{bar:40}] {elapsed}/{duration} {msg}",
        );
    }

    fn restyle(&self, what: &str, len: u64, template: &str) {
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_prefix(what.to_owned());
        self.bar.set_length(len);
        self.bar.set_position(0);
        self.bar.set_message("");
        self.bar.reset_elapsed();
    }

    /// Whether an update is due (callers skip building messages otherwise).
    pub(crate) fn due(&self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.last.get()) < REFRESH {
            return false;
        }
        self.last.set(now);
        true
    }

    /// Sets the position.
    pub(crate) fn set(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    /// Sets the position of a timed phase.
    pub(crate) fn set_elapsed(&self, elapsed: Duration) {
        self.set(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    }

    /// Sets the text after the bar.
    pub(crate) fn message(&self, text: String) {
        self.bar.set_message(text);
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
