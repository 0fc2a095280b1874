//! [`AppWaker`]: how another thread tells an app that it has work for it.
//!
//! The loop owns every app, so a thread that produces for one (a market-data feed, a
//! database listener, a Redis link) does not call it: it puts the work in a bounded queue
//! the app owns and wakes the loop. The loop then calls [`super::App::on_wake`] on its own
//! thread. The waker is an atomic flag per app and the loop's `mio::Waker`: no lock, no
//! channel inside the loop, and a burst of wakes costs one call.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::handle::ServerHandle;

/// Wakes one app's [`super::App::on_wake`] from any thread; from [`super::Server::app_waker`].
///
/// ```no_run
/// # use wsloop::server::{App, ConnId, Ctx, Message, Server, ServerConfig};
/// # struct Feed;
/// # impl App for Feed {
/// #     fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}
/// # }
/// let server = Server::builder(ServerConfig::default()).route("/feed", Feed).bind()?;
/// let waker = server.app_waker("/feed").expect("routed above");
/// std::thread::spawn(move || {
///     // ...push to the app's own bounded queue, then:
///     waker.wake().ok();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AppWaker {
    woken: Arc<AtomicBool>,
    handle: ServerHandle,
}

impl AppWaker {
    pub(super) fn new(woken: Arc<AtomicBool>, handle: ServerHandle) -> Self {
        Self { woken, handle }
    }

    /// Asks the loop to call the app's `on_wake` soon. Whatever was put in the app's
    /// queue before this call is there when `on_wake` runs; a wake already pending makes
    /// this free (no system call).
    pub fn wake(&self) -> io::Result<()> {
        // The loop clears the flag before it calls the app, so work queued after that
        // clear sets it again and raises a new wake: none is lost.
        if self.woken.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.handle.wake()
    }
}

/// Takes a pending wake: `true` once per run of [`AppWaker::wake`] calls.
pub(super) fn take_wake(woken: &AtomicBool) -> bool {
    woken.swap(false, Ordering::AcqRel)
}
