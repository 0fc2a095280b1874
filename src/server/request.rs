//! Answers to a complete request head: which endpoint, upgrade or plain HTTP, or refusal.

use std::time::Instant;

use super::event_loop::Server;
use super::routes::{Endpoint, Route, route};
use crate::hub::valid_user_id;
use crate::protocol::Limits;
use crate::protocol::handshake::{Rejection, RequestHead, validate_upgrade, write_accept};
use crate::protocol::http::Response;

/// The chat page: one HTML file with its CSS and JS inline, compiled into the binary.
const CHAT_PAGE: &str = include_str!("../../web/chat.html");

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
        /// The user id the client asked for (`?user_id=`), validated; `None` to assign one.
        user: Option<String>,
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
            let body = server
                .stats
                .to_json(now, server.admitted, server.hub.counts())
                .into_bytes();
            Response::with_body(200, "application/json", body)
        }),
        Route::Page => plain_get(head, || {
            let page = CHAT_PAGE.as_bytes().to_vec();
            Response::with_body(200, "text/html; charset=utf-8", page)
                .header("Cache-Control", "no-cache")
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
    let upgrade = match validate_upgrade(head, &server.config.subprotocols) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Answer::Respond(rejection.response()),
    };
    let (limits, user) = match endpoint {
        Endpoint::Echo => (server.config.limits, None),
        Endpoint::Hub => match head.query_param("user_id") {
            Some(user) if !valid_user_id(&user) => {
                let reason = "user_id must be 1-64 printable ASCII characters without spaces";
                return Answer::Respond(Response::text(400, reason));
            }
            user => (server.config.hub_limits, user),
        },
    };
    let mut accept = Vec::with_capacity(160);
    write_accept(&upgrade, &[], &mut accept);
    Answer::Upgrade {
        accept,
        endpoint,
        limits,
        user,
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
