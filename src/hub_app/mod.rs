//! The hub (`/ws`, [`crate::hub`]) as an application on the App API ([`crate::server::App`]).
//!
//! [`app::HubApp`] is routed like any app, below the embedder's routes: `/ws`, and `/api/*`
//! for operators. It is told of opens, runs of messages and closes (departures in batches),
//! decides its upgrades (`user_id`, the per-user limit), checks its connections' token
//! expiry with its own timers, drops old history and answers overdue API requests at its
//! own ticks, is woken by the Redis threads (an [`crate::server::AppWaker`]) to drain their
//! events, checks each API request's head before its body is read (`on_http_head`) and
//! answers it now or later (`on_http`, `Ctx::respond`). Its state is its own
//! ([`state::HubState`]): the rooms and members, the outbox, its history file
//! ([`history_log`], [`history_read`]), its link to Redis ([`cluster_link`], [`gather`]),
//! its API ([`api`], [`server_api`]) and its figures, which it reports through
//! `App::health`, `App::has_work_in_flight` and `App::metrics`. The engine keeps nothing of
//! it: no field, no route, no timer, no figure.
//!
//! It lives outside the engine (`src/server/`), which names it in one place only: the
//! built-in routes (`route_builtins` in `src/server/event_loop.rs`, `/ws` and `/api/*`
//! below an embedder's routes). It reaches the engine through the public App API, as an
//! embedder's app would, and through four crate-internal helpers besides: a frame the hub
//! encoded taken as a [`crate::server::Prepared`] as it is (the hub encodes in
//! [`crate::hub`], which has no `Ctx`), an [`crate::server::HttpTicket`]'s connection id
//! (its Redis messages carry that id to name the API request they answer), the timer
//! arithmetic that clamps a deadline, and the panic injected in test builds.
//!
//! | the hub | on the App API |
//! |---|---|
//! | its outbox's frames, encoded once, to each recipient ([`delivery`]) | `Ctx::send_prepared`, which holds each recipient (the sender too) to `max_outbound_bytes` |
//! | the closes it asks for (a token expired, the server API's disconnect) | `Ctx::close` |
//! | its answers to a run whose last frame failed the connection | `Ctx::send_prepared` from `on_run_end`, which that connection still takes, ahead of its close frame |
//! | timestamps, token expiry | `Ctx::wall_clock` |
//! | one Redis event's panic dropping that event only | `Ctx::contained` |
//! | `/api/info`'s connections, uptime and status | `Ctx::open_connections`, `Ctx::started`, `Ctx::readiness` |
//! | an API request's head (key, length), a bare `?user_id` | `HttpHead::head`, `Request::head` |

mod api;
pub(crate) mod app;
mod cluster_link;
mod delivery;
mod gather;
mod history_log;
mod history_read;
mod server_api;
mod settle;
pub(crate) mod state;

use crate::hub::time::Now;
use crate::server::Ctx;

/// The loop's clocks for this turn, as the hub takes them.
pub(crate) fn clock(ctx: &Ctx<'_>) -> Now {
    Now {
        wall: ctx.wall_clock(),
        mono: ctx.now(),
    }
}
