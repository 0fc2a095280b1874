//! A handle other threads use to ask the loop to stop (the signal thread, tests).
//!
//! It is an atomic flag plus the loop's `mio::Waker`: no lock, no channel. The loop reads the
//! flag when the waker fires and starts a graceful shutdown.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use mio::Waker;

/// No stop requested.
const RUNNING: u8 = 0;
/// Graceful shutdown requested: close 1001 to everyone, drain, exit.
const DRAIN: u8 = 1;
/// Immediate exit requested (a second signal).
const EXIT_NOW: u8 = 2;

/// What the loop was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopRequest {
    /// Keep running.
    None,
    /// Stop accepting, close every connection with 1001, wait for replies, exit.
    Drain,
    /// Exit at once.
    Now,
}

/// A cloneable, thread-safe handle to stop a running [`Server`](super::Server).
#[derive(Debug, Clone)]
pub struct ServerHandle {
    state: Arc<AtomicU8>,
    waker: Arc<Waker>,
}

impl ServerHandle {
    pub(super) fn new(waker: Arc<Waker>) -> Self {
        Self {
            state: Arc::new(AtomicU8::new(RUNNING)),
            waker,
        }
    }

    /// Asks for a graceful shutdown; a second call asks to exit at once.
    pub fn shutdown(&self) -> io::Result<()> {
        let previous = self.state.fetch_max(DRAIN, Ordering::SeqCst);
        if previous >= DRAIN {
            self.state.store(EXIT_NOW, Ordering::SeqCst);
        }
        self.waker.wake()
    }

    /// Asks the loop to exit at once, dropping every connection.
    pub fn exit_now(&self) -> io::Result<()> {
        self.state.store(EXIT_NOW, Ordering::SeqCst);
        self.waker.wake()
    }

    /// Wakes the loop without asking it to stop (used by threads that fill its queues).
    pub fn wake(&self) -> io::Result<()> {
        self.waker.wake()
    }

    pub(super) fn request(&self) -> StopRequest {
        match self.state.load(Ordering::SeqCst) {
            RUNNING => StopRequest::None,
            DRAIN => StopRequest::Drain,
            _ => StopRequest::Now,
        }
    }
}
