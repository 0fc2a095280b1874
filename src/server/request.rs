//! Answers to a complete request head: which endpoint, upgrade or plain HTTP, or refusal.

use std::time::Instant;

use super::apps::AppId;
use super::event_loop::Server;
use super::listeners::Port;

use super::routes::{Route, route};
use crate::auth::Identity;

use crate::protocol::Limits;
use crate::protocol::deflate::{self, DeflateParams};
use crate::protocol::handshake::{Rejection, RequestHead, validate_upgrade, write_accept};
use crate::protocol::http::Response;

/// The chat page: one HTML file with its CSS and JS inline, compiled into the binary.
const CHAT_PAGE: &str = include_str!("../../web/chat.html");
/// The admin page: one HTML file with its CSS and JS inline, compiled into the binary.
const ADMIN_PAGE: &str = include_str!("../../web/admin.html");
/// What the admin page may load and call: itself and this server only, never a frame.
const ADMIN_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The JavaScript client SDK, an ES module the chat page imports (`/wsloop.js`).
const SDK_JS: &str = include_str!("../../clients/js/wsloop.js");

/// An accepted handshake: what the upgraded connection needs.
#[derive(Debug)]
pub(super) struct Accepted {
    /// The encoded `101 Switching Protocols` response.
    pub(super) accept: Vec<u8>,
    /// The app the connection is for.
    pub(super) app: AppId,
    /// Size limits for its session.
    pub(super) limits: Limits,
    /// The verified token's contents, when auth is on.
    pub(super) identity: Option<Identity>,
    /// permessage-deflate, when both sides agreed (RFC 7692).
    pub(super) deflate: Option<DeflateParams>,
}

/// What to do with a request.
#[derive(Debug)]
pub(super) enum Answer {
    /// Switch protocols: send the 101 and open a session.
    Upgrade(Accepted),
    /// Send this HTTP response and close.
    Respond(Response),
    /// A plain request for an app's path: the app sees its head, then its body.
    AppHttp(AppId),
}

/// Decides the answer to `head`.
pub(super) fn answer_request(
    server: &Server,
    head: &RequestHead,
    port: Port,
    now: Instant,
) -> Answer {
    // Application routes first: an embedder's `/*` takes every path.
    let (route, served) = match server.apps.find_route(&head.path) {
        Some((app, exposure)) => (Route::App(app), server.listeners.serves_app(port, exposure)),
        None => {
            let route = route(&head.path);
            (route, server.listeners.serves(port, route))
        }
    };
    if !served {
        return Answer::Respond(Rejection::NotFound.response());
    }
    match route {
        // Not a WebSocket handshake: the app may answer it as plain HTTP.
        Route::App(app) if !head.has_token("upgrade", "websocket") => Answer::AppHttp(app),
        Route::App(app) => upgrade(server, head, app),
        Route::Health => plain_get(head, || Response::text(200, "ok")),
        Route::Stats => plain_get(head, || {
            let websockets = server.open_websockets();
            let apps = server.apps.metrics();
            let body = server
                .stats
                .to_json(now, server.admitted, websockets, &apps)
                .into_bytes();
            Response::with_body(200, "application/json", body)
        }),
        Route::Page => plain_get(head, || {
            let page = CHAT_PAGE.as_bytes().to_vec();
            Response::with_body(200, "text/html; charset=utf-8", page)
                .header("Cache-Control", "no-cache")
        }),
        Route::Admin => plain_get(head, || {
            let page = ADMIN_PAGE.as_bytes().to_vec();
            Response::with_body(200, "text/html; charset=utf-8", page)
                .header("Cache-Control", "no-cache")
                .header("Content-Security-Policy", ADMIN_CSP)
                .header("X-Content-Type-Options", "nosniff")
                .header("Referrer-Policy", "no-referrer")
        }),
        Route::Sdk => plain_get(head, || {
            let body = SDK_JS.as_bytes().to_vec();
            Response::with_body(200, "text/javascript; charset=utf-8", body)
                .header("Cache-Control", "no-cache")
        }),
        Route::Metrics => plain_get(head, || {
            let body = server.metrics_snapshot(now).render().into_bytes();
            let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            Response::with_body(200, kind, body)
        }),
        Route::Ready => plain_get(head, || server.readiness().response()),
        Route::NotFound => Answer::Respond(Rejection::NotFound.response()),
    }
}

/// Validates a WebSocket upgrade for `app`.
fn upgrade(server: &Server, head: &RequestHead, app: AppId) -> Answer {
    if server.drain_deadline.is_some() {
        let refusal = Response::text(503, "server shutting down").header("Retry-After", "5");
        return Answer::Respond(refusal);
    }
    let upgrade = match validate_upgrade(head, &server.config.subprotocols) {
        Ok(upgrade) => upgrade,
        Err(rejection) => return Answer::Respond(rejection.response()),
    };
    if let Err(refused) = server
        .config
        .origin
        .check(head.header("origin"), head.header("host"))
    {
        return Answer::Respond(Response::text(403, &refused.to_string()));
    }
    let identity = match server.config.auth.authenticate(head, server.wall_now.wall) {
        Ok(identity) => identity,
        Err(refused) => {
            let response =
                Response::text(401, refused.reason()).header("WWW-Authenticate", "Bearer");
            return Answer::Respond(response);
        }
    };
    let limits = server.apps.limits(app).unwrap_or(server.config.limits);
    let agreement = server.config.compression.as_ref().and_then(|config| {
        deflate::negotiate(upgrade.extensions.iter().map(String::as_str), config)
    });
    let mut extra = Vec::new();
    if let Some(agreement) = &agreement {
        extra.push(("Sec-WebSocket-Extensions", agreement.response.clone()));
    }
    let mut accept = Vec::with_capacity(160);
    write_accept(&upgrade, &extra, &mut accept);
    Answer::Upgrade(Accepted {
        accept,
        app,
        limits,
        identity,
        deflate: agreement.map(|a| a.params),
    })
}

/// A plain endpoint: GET, and HEAD (the same head without the body, which load balancers
/// and `curl -I` use); anything else is 405.
fn plain_get(head: &RequestHead, body: impl FnOnce() -> Response) -> Answer {
    match head.method.as_str() {
        "GET" => Answer::Respond(body()),
        "HEAD" => Answer::Respond(body().for_head()),
        _ => {
            Answer::Respond(Response::text(405, "method not allowed").header("Allow", "GET, HEAD"))
        }
    }
}
