//! Answers to a complete request head: which endpoint, upgrade or plain HTTP, or refusal.

use std::time::Instant;

use super::event_loop::Server;
use super::routes::{Endpoint, Route, route};
use crate::protocol::Limits;
use crate::protocol::handshake::{Rejection, RequestHead, validate_upgrade, write_accept};
use crate::protocol::http::Response;

/// What to do with a request.
#[derive(Debug)]
pub(super) enum Answer {
    /// Switch protocols: send `accept` (the 101 response) and open a session.
    Upgrade {
        /// The encoded `101 Switching Protocols` response.
        accept: Vec<u8>,
        /// The endpoint the connection is for.
        endpoint: Endpoint,
        /// Size limits for its session.
        limits: Limits,
    },
    /// Send this HTTP response and close.
    Respond(Response),
}

/// Decides the answer to `head`.
pub(super) fn answer_request(server: &Server, head: &RequestHead, now: Instant) -> Answer {
    match route(&head.path) {
        Route::WebSocket(endpoint) => upgrade(server, head, endpoint),
        Route::Health => plain_get(head, || Response::text(200, "ok")),
        Route::Stats => plain_get(head, || {
            let body = server.stats.to_json(now, server.admitted).into_bytes();
            Response::with_body(200, "application/json", body)
        }),
        Route::NotFound => Answer::Respond(Rejection::NotFound.response()),
    }
}

/// Validates a WebSocket upgrade for `endpoint`.
fn upgrade(server: &Server, head: &RequestHead, endpoint: Endpoint) -> Answer {
    if server.drain_deadline.is_some() {
        let refusal = Response::text(503, "server shutting down").header("Retry-After", "5");
        return Answer::Respond(refusal);
    }
    match validate_upgrade(head, &server.config.subprotocols) {
        Ok(upgrade) => {
            let mut accept = Vec::with_capacity(160);
            write_accept(&upgrade, &[], &mut accept);
            Answer::Upgrade {
                accept,
                endpoint,
                limits: server.config.limits,
            }
        }
        Err(rejection) => Answer::Respond(rejection.response()),
    }
}

/// A plain endpoint that answers GET (and HEAD-less clients) only.
fn plain_get(head: &RequestHead, body: impl FnOnce() -> Response) -> Answer {
    if head.method == "GET" {
        Answer::Respond(body())
    } else {
        Answer::Respond(Response::text(405, "method not allowed").header("Allow", "GET"))
    }
}
