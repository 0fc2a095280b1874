//! Which request paths the server answers, and how.

use super::apps::AppId;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// An application's path ([`super::app::App`]; `/echo` and `/ws` are the engine's own):
    /// a WebSocket upgrade, or a plain request it may answer.
    App(AppId),
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
