//! Which request paths the server answers, and how.

use super::apps::AppId;

/// What an upgraded connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// `/echo`: every text and binary message is sent back (Autobahn and benchmark target).
    /// It stays on the engine's direct path until the app path costs the same: routed to
    /// an echo app it measured 563 against the direct path's 448 instructions per round
    /// trip at D=16, 1,479 against 1,337 at D=1 (`benches/callgrind.sh echo`, C=100, S=32).
    Echo,
    /// An application routed by path ([`super::app::App`]).
    App(AppId),
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// A WebSocket endpoint.
    WebSocket(Endpoint),
    /// `GET /healthz`: 200 while the process runs.
    Health,
    /// `GET /stats`: headline figures as JSON.
    Stats,
    /// `GET /metrics`: Prometheus text exposition.
    Metrics,
    /// `GET /readyz`: 200 while accepting WebSockets, 503 while draining.
    Ready,
    /// `GET /`: the chat page, embedded in the binary.
    Page,
    /// `GET /admin`: the operator page (it calls `/stats` and the API with its key).
    Admin,
    /// `GET /wsloop.js`: the JavaScript client SDK (`clients/js/wsloop.js`), embedded in
    /// the binary so a page served by wsloop can `import { Client } from "/wsloop.js"`.
    Sdk,
    /// Anything else: 404.
    NotFound,
}

/// Maps a request path to its route.
pub(super) fn route(path: &str) -> Route {
    match path {
        "/echo" => Route::WebSocket(Endpoint::Echo),
        "/healthz" => Route::Health,
        "/stats" => Route::Stats,
        "/metrics" => Route::Metrics,
        "/readyz" => Route::Ready,

        "/" | "/index.html" => Route::Page,
        "/admin" => Route::Admin,
        "/wsloop.js" => Route::Sdk,
        _ => Route::NotFound,
    }
}
