//! The hub (`/ws`, [`crate::hub`]) as an application on the App API ([`super::App`]).
//!
//! [`app::HubApp`] is routed like any app, below the embedder's routes: `/ws`, and `/api/*`
//! for operators. It is told of opens, runs of messages and closes (departures in batches),
//! decides its upgrades (`user_id`, the per-user limit), checks its connections' token
//! expiry with its own timers, drops old history and answers overdue API requests at its
//! own ticks, is woken by the Redis threads (an [`super::AppWaker`]) to drain their
//! events, checks each API request's head before its body is read (`on_http_head`) and
//! answers it now or later (`on_http`, `Ctx::respond`). Its state is its own
//! ([`state::HubState`]): the rooms and members, the outbox, its history file
//! ([`history_log`], [`history_read`]), its link to Redis ([`cluster_link`], [`gather`]),
//! its API ([`api`], [`server_api`]) and its figures, which it reports through
//! `App::health`, `App::has_work_in_flight` and `App::metrics`. The engine keeps nothing of
//! it: no field, no route, no timer, no figure.
//!
//! What is left between the two: the hub's state is lent the engine (`&mut Server`) in
//! each callback, to reach a few of its internals that the public `Ctx` does not offer,
//! each the job of one API call to come:
//!
//! | the hub uses | on the App API |
//! |---|---|
//! | `Outbox::sends` through `queue_shared` ([`delivery`]) | `Ctx::prepare` and `Ctx::send_prepared` |
//! | `Outbox::closes` through `close_conn` | `Ctx::close` |
//! | replies queued ahead of a failure's close frame (`queue_own_replies`, from `on_run_end`) | `Ctx::send` from `on_run_end`, which the failing connection still takes |
//! | `wall_now`, the loop's wall-clock time | a `Ctx` accessor |
//! | `isolated_shared` around each Redis event | a panic in `on_wake` closing no connection (the engine's net, per event) |
//! | the engine's connection count and readiness for `/api/info` | `Ctx` accessors |

pub(super) mod api;
pub(super) mod app;
pub(super) mod cluster_link;
pub(super) mod delivery;
pub(super) mod gather;
pub(super) mod history_log;
pub(super) mod history_read;
pub(super) mod server_api;
pub(super) mod settle;
pub(super) mod state;
