//! What the engine still knows about the hub (`/ws`, [`crate::hub`]): applying its outbox
//! to connections ([`settle`], [`delivery`]), its history files ([`history_log`],
//! [`history_read`]), its link to the cluster ([`cluster_link`], [`gather`]) and its HTTP
//! API ([`api`], [`server_api`]).
//!
//! The hub's WebSocket is an application on the App API ([`super::App`]): [`app`] is told
//! of opens, messages and closes (departures in batches) like any app, decides its
//! upgrades (`user_id`, the per-user limit), checks its connections' token expiry with
//! its own timers, drops old history at its own tick, and is woken by the Redis threads
//! (an [`super::AppWaker`]) to drain their events. Its HTTP API (`/api/*`, for operators)
//! is the app's too: [`app::HubApp`] checks each request's head before its body is read
//! (`on_http_head`) and answers it now or, clustered, later (`on_http`, `Ctx::respond`).
//! Its state is not yet its own: the rest are `impl Server` blocks with the run of the
//! loop's state, and the app reaches them through the `Ctx` it is lent. They live here, apart from the
//! engine proper, so that the boundary is visible and moving the hub's state into
//! [`app::HubApp`] has one place to empty. What each piece becomes on the API, which now
//! has all of it:
//!
//! | here | on the App API |
//! |---|---|
//! | `Outbox::sends` through `queue_shared` ([`delivery`]) | `Ctx::prepare` and `Ctx::send_prepared` |
//! | `Outbox::closes` and [`settle`]'s waves | `Ctx::close`; the app's `on_closes` already takes each wave's departures |
//! | replies queued ahead of a failure's close frame (`queue_own_replies`, from `on_run_end`) | `Ctx::send` from `on_run_end`, which the failing connection still takes |
//! | the answers [`api`], [`server_api`] and [`gather`] leave in `Server::api_outcomes` and `Server::api_answers` for the app to give | the app's own state; answers given with `Ctx::respond` where they complete |
//! | `/readyz` on the cluster's state (`degraded`, `cluster_never_up`) | `App::health` |
//! | the drain waiting for `cluster_idle` | `App::has_work_in_flight` |
//! | hub counts in `/metrics` (`metrics.rs`) and `/stats` (`stats.rs`) | `App::metrics` (gauges named `hub_connections`, `users`, `rooms`: the names both show today; `hub_errors` and `api_requests` by label with `AppMetrics::counters`) |

pub(super) mod api;
pub(super) mod app;
pub(super) mod cluster_link;
pub(super) mod delivery;
pub(super) mod gather;
pub(super) mod history_log;
pub(super) mod history_read;
pub(super) mod server_api;
pub(super) mod settle;
