//! SIGTERM and SIGINT, delivered into the event loop through `signal-hook-mio`.
//!
//! The first signal starts a graceful shutdown (1001 to every client, drain, exit 0); a
//! second one exits at once. SIGHUP reloads the TLS certificate and key (see `tls`). The
//! signal source is registered in the loop's own `Poll`, so
//! no thread and no lock are involved.

use std::io;

use mio::{Interest, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::event_loop::Server;

/// The registered signal source (a newtype only to give it `Debug`).
pub(super) struct SignalSource(Signals);

impl std::fmt::Debug for SignalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalSource(SIGTERM, SIGINT, SIGHUP)")
    }
}

/// The token of the signal source.
pub(super) const SIGNALS: Token = Token(usize::MAX - 3);

impl Server {
    /// Routes SIGTERM and SIGINT to this loop (first graceful drain, second immediate exit)
    /// and SIGHUP (reload the TLS files).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(SignalSource(signals));
        Ok(())
    }

    /// Reads pending signals and turns each into a stop request.
    pub(super) fn on_signals(&mut self) {
        let Some(SignalSource(signals)) = &mut self.signals else {
            return;
        };
        let received: Vec<i32> = signals.pending().collect();

        for signal in received {
            if signal == SIGHUP {
                self.reload_tls();
                continue;
            }
            let name = if signal == SIGTERM {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            if self.drain_deadline.is_some() {
                log::warn!("{name} again: exiting now");
            } else {
                log::info!("{name}: draining connections (send it again to exit at once)");
            }
            let _ = self.handle().shutdown();
        }
    }
}
