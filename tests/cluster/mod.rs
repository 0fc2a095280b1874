//! Shared pieces of the `cluster_*` tests: a real `redis-server`, a real `nginx` running
//! `deploy/nginx.conf`, and real `wsloop serve` nodes, each a child process on a free
//! loopback port that is killed when its guard is dropped (its log printed if the test
//! failed), all under one temp directory removed at the end.
//!
//! - [`procs`]: the child-process guard, the temp directory, finding the binaries;
//! - [`servers`]: Redis, wsloop nodes and nginx;
//! - [`peer`]: WebSocket clients reading JSON, and plain HTTP requests;
//! - [`stream`]: a numbered stream under a fault, and the checker of the guarantees.
//!
//! `redis-server` and `nginx` are Debian packages that `./scripts/test` installs; a missing
//! one fails the test with that advice rather than skipping it.

#![allow(dead_code)] // Each test crate uses a different subset of these helpers.

pub(crate) mod peer;
pub(crate) mod procs;
pub(crate) mod servers;
pub(crate) mod stream;

use std::time::{Duration, Instant};

/// How long a process gets to start, a condition to become true, a message to arrive.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// The API key every node accepts on `POST /api/publish`.
pub(crate) const API_KEY: &str = "cluster-tests-api-key";

/// Polls `check` every 50 ms until it returns `Some`, failing with `what` after [`PATIENCE`].
pub(crate) fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {PATIENCE:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
