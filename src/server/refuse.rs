//! Refusing a connection the server cannot take.

use std::time::Instant;

use super::conn::ConnId;
use super::event_loop::Server;
use crate::protocol::http::Response;

/// Seconds a refused client is told to wait before retrying.
const RETRY_AFTER_SECS: &str = "5";

impl Server {
    /// Answers 503 with `Retry-After` to a connection over `max_connections`.
    pub(super) fn refuse_full(&mut self, id: ConnId, _now: Instant) {
        self.stats.rejected(503);
        let response = Response::text(503, "server at connection limit")
            .header("Retry-After", RETRY_AFTER_SECS);
        self.respond(id, response);
    }
}
