//! What the engine still knows about the hub (`/ws`, [`crate::hub`]): applying its outbox
//! to connections ([`settle`], [`delivery`]), its history files ([`history_log`],
//! [`history_read`]), its link to the cluster ([`cluster_link`], [`gather`]) and its HTTP
//! API ([`api`], [`server_api`]).
//!
//! The hub is not yet an application on the App API ([`super::App`]): these are `impl
//! Server` blocks with the run of the loop's state. They live here, apart from the engine
//! proper, so that the boundary is visible and moving the hub has one place to empty. What
//! each piece becomes on the API, which now has all of it:
//!
//! | here | on the App API |
//! |---|---|
//! | `Endpoint::Hub`, `/api/*` routes | `ServerBuilder::route_paths(&["/ws", "/api/*"], hub)` |
//! | per-user connection limit and `user_id` at the upgrade (`request.rs`) | `App::on_upgrade` with the request's identity |
//! | `Outbox::sends` through `queue_shared` ([`delivery`]) | `Ctx::prepare` and `Ctx::send_prepared` |
//! | `Outbox::closes`, `leaving` and [`settle`]'s batching | `Ctx::close` and `App::on_close` (batching departures needs the app to defer its presence frames to the end of the callback) |
//! | token expiry (`TimerKind::TokenExpiry`) | `Ctx::timer` and `App::on_timer` |
//! | history expiry at the loop's sweep | `Ctx::tick` and `App::on_tick` |
//! | the cluster's wake-ups (`drain_cluster` on the waker) | `App::on_start`, `Ctx::waker`, `App::on_wake` |
//! | [`api`], [`server_api`], [`gather`] | `App::on_http`, `HttpReply::Later`, `Ctx::respond` |
//! | hub counts in `/metrics` (`metrics.rs`) | `App::metrics` |
//!
//! Still without an API: the hub's counts in `/stats`, and per-route limits (the hub's
//! `hub_limits` on message size and rate).

pub(super) mod api;
pub(super) mod cluster_link;
pub(super) mod delivery;
pub(super) mod gather;
pub(super) mod history_log;
pub(super) mod history_read;
pub(super) mod server_api;
pub(super) mod settle;
