//! What the engine still knows about the hub (`/ws`, [`crate::hub`]): applying its outbox
//! to connections ([`settle`], [`delivery`]), its history files ([`history_log`],
//! [`history_read`]), its link to the cluster ([`cluster_link`], [`gather`]) and its HTTP
//! API ([`api`], [`server_api`]).
//!
//! The hub is not yet an application on the App API ([`super::App`]): these are `impl
//! Server` blocks with the run of the loop's state. They live here, apart from the engine
//! proper, so that the boundary is visible and so that moving the hub behind the App API
//! (which now has what the hub needs: wake-ups from other threads, [`super::AppWaker`], a
//! shutdown signal, [`super::App::on_shutdown`], and HTTP an app answers now or later,
//! [`super::App::on_http`]) has one place to empty.

pub(super) mod api;
pub(super) mod cluster_link;
pub(super) mod delivery;
pub(super) mod gather;
pub(super) mod history_log;
pub(super) mod history_read;
pub(super) mod server_api;
pub(super) mod settle;
