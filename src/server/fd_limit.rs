//! File descriptors: the process's `RLIMIT_NOFILE`, and what `accept` does when it is spent.
//!
//! At startup the soft limit is raised to the hard limit, with a warning (and the numbers)
//! when even that is below what `server.max_connections` needs. When `accept` still fails
//! with EMFILE or ENFILE, the client is not left in the backlog: the listener is
//! edge-triggered, so it would hang there until someone else connects. A reserve
//! descriptor (an open `/dev/null`) is given up for one `accept`, that client gets a `503`
//! with `Retry-After` and is closed, and the reserve is taken back; the accept loop goes on
//! until the backlog is empty. If the reserve cannot be taken back (another thread took
//! the descriptor), or `accept` fails for another reason of the whole process (ENOBUFS,
//! ENOMEM), the listener is retried on a short timer instead. Errors that concern one
//! connection only (ECONNABORTED, EPROTO, EPERM, EINTR) just continue the accept loop.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::event_loop::Server;
use super::listeners::Port;
use crate::protocol::http::Response;

/// Descriptors the process needs besides its connections: standard streams, the poll,
/// listener, waker, signal pipe, the reserve, the history log, Redis sockets, some slack.
pub(super) const FD_OVERHEAD: u64 = 64;
/// How soon the listener is tried again after an accept failure without a reserve.
pub(super) const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Reads of a refused client's request before closing (bounded: the loop must go on).
const DRAIN_READS: usize = 4;
/// What a client turned away for want of a descriptor is told: try again in a second.
const RETRY_AFTER_SECS: &str = "1";

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; warns when it is still below
/// `max_connections` + [`FD_OVERHEAD`]. Returns the soft limit now in force.
pub(super) fn raise_nofile(max_connections: usize) -> Option<u64> {
    let (_, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(e) => {
            log::warn!("cannot read RLIMIT_NOFILE: {e}");
            return None;
        }
    };
    let soft = match rlimit::increase_nofile_limit(hard) {
        Ok(soft) => soft,
        Err(e) => {
            log::warn!("cannot raise RLIMIT_NOFILE towards {hard}: {e}");
            rlimit::Resource::NOFILE.get().ok()?.0
        }
    };
    let max = u64::try_from(max_connections).unwrap_or(u64::MAX);
    let needed = max.saturating_add(FD_OVERHEAD);
    if soft < needed {
        log::warn!(
            "RLIMIT_NOFILE is {soft} (hard limit {hard}), below the {needed} descriptors that \
             server.max_connections = {max} needs ({FD_OVERHEAD} more for the process); \
             clients past it get 503: raise the limit (ulimit -n, LimitNOFILE=) or lower \
             max_connections"
        );
    }
    Some(soft)
}

/// How the accept loop goes on after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AcceptError {
    /// The backlog is empty.
    WouldBlock,
    /// This connection failed (aborted, refused by a firewall rule, a signal): accept the
    /// next one.
    PerConnection,
    /// The process or the system is out of descriptors (EMFILE, ENFILE).
    OutOfDescriptors,
    /// Anything else: retry the listener on a timer.
    Other,
}

impl AcceptError {
    /// Classifies an error of `accept`.
    pub(super) fn of(e: &io::Error) -> Self {
        if e.kind() == io::ErrorKind::WouldBlock {
            return Self::WouldBlock;
        }
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => Self::OutOfDescriptors,
            Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::EINTR) => {
                Self::PerConnection
            }
            _ => Self::Other,
        }
    }
}

/// A descriptor kept open only to be given up when `accept` hits EMFILE.
#[derive(Debug)]
pub(super) struct Reserve(Option<File>);

impl Reserve {
    /// Opens the reserve (`/dev/null`); an empty reserve if it cannot be opened.
    pub(super) fn open() -> Self {
        Self(File::open("/dev/null").ok())
    }

    /// Closes the reserve's descriptor; false if there was none to give up.
    pub(super) fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes the descriptor back; false if the process is still out of descriptors.
    pub(super) fn restore(&mut self) -> bool {
        if self.0.is_none() {
            self.0 = File::open("/dev/null").ok();
        }
        self.0.is_some()
    }
}

/// Answers a client accepted on the reserve descriptor with `503` + `Retry-After` and
/// closes it at once: there is no descriptor to keep it open with.
///
/// A new socket's send buffer is empty, so the short answer goes out in one write. The
/// write side is shut first and whatever request has arrived is read, so the close is a
/// FIN after the answer rather than a reset that could discard it.
pub(super) fn refuse_without_descriptor(mut socket: TcpStream) {
    let mut answer = Vec::with_capacity(160);
    Response::text(503, "server out of file descriptors")
        .header("Retry-After", RETRY_AFTER_SECS)
        .encode(&mut answer);
    let _ = socket.write(&answer);
    let _ = socket.shutdown(Shutdown::Write);
    let mut request = [0u8; 1024];
    for _ in 0..DRAIN_READS {
        if !matches!(socket.read(&mut request), Ok(n) if n > 0) {
            break;
        }
    }
}

impl Server {
    /// Accepts one client on the reserve descriptor and turns it away (see the module
    /// docs). `Err(WouldBlock)`: the backlog is empty; any other error: retry on a timer.
    pub(super) fn accept_on_reserve(&mut self, port: Port) -> Result<(), AcceptError> {
        if !self.reserve.release() {
            self.reserve.restore();
            return Err(AcceptError::Other);
        }
        let Some(listener) = self.listeners.get(port) else {
            self.reserve.restore();
            return Err(AcceptError::WouldBlock);
        };
        let accepted = listener.accept();
        let outcome = match accepted {
            Ok((socket, peer)) => {
                refuse_without_descriptor(socket);
                self.stats.accept_fd_exhausted += 1;
                log::debug!("{peer}: refused, out of file descriptors");
                Ok(())
            }
            Err(e) => Err(AcceptError::of(&e)),
        };
        if self.reserve.restore() {
            outcome
        } else {
            Err(AcceptError::Other)
        }
    }

    /// Tries the listener again after [`ACCEPT_RETRY`]: edge-triggered readiness would not
    /// report the clients already waiting in the backlog.
    pub(super) fn retry_accept(&mut self, now: Instant, e: &io::Error) {
        log::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
        self.timers.arm_accept(now + ACCEPT_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_classified() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(
            AcceptError::of(&os(libc::EMFILE)),
            AcceptError::OutOfDescriptors
        );
        assert_eq!(
            AcceptError::of(&os(libc::ENFILE)),
            AcceptError::OutOfDescriptors
        );
        for errno in [libc::ECONNABORTED, libc::EPROTO, libc::EPERM, libc::EINTR] {
            assert_eq!(AcceptError::of(&os(errno)), AcceptError::PerConnection);
        }
        assert_eq!(AcceptError::of(&os(libc::EAGAIN)), AcceptError::WouldBlock);
        assert_eq!(AcceptError::of(&os(libc::ENOBUFS)), AcceptError::Other);
    }

    #[test]
    fn the_reserve_is_given_up_and_taken_back() {
        let mut reserve = Reserve::open();
        assert!(reserve.release());
        assert!(!reserve.release());
        assert!(reserve.restore());
        assert!(reserve.release());
    }
}
