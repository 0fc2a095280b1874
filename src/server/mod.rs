//! The event loop and everything that touches sockets (the only importer of mio besides
//! the client).
//!
//! One thread, one `mio::Poll`, one [`Server`] that owns the listener, a `Slab` of
//! connections keyed by generation-tagged [`ConnId`]s, their buffers and their timers. It
//! moves bytes between sockets and [`crate::protocol`], and nothing else.

mod admission;
mod app;
mod app_ctx;
mod app_http;
mod app_metrics;
mod app_prepared;
mod app_run;
mod app_waker;
mod apps;
mod budget;
mod client_addr;
mod compress;
mod config;
mod conn;
mod echo;
mod event_loop;
mod fan_out;
mod fd_limit;
mod frames;
mod handle;
mod heartbeat;
mod isolation;
mod lifecycle;
mod listeners;
mod metrics;

mod notify;
mod outbound;
mod proxied;
mod publications;
mod readiness;
mod reading;

mod request;
mod routes;
mod signals;
mod stall;

mod stats;
mod timers;
mod tls;
mod tokens;
mod upgrade;
mod writing;

pub use client_addr::{IpBlock, TrustedProxies};
pub use config::{ApiConfig, ServerConfig};
pub use tls::TlsFiles;

pub use crate::protocol::http::Response;
pub use app::{
    App, Closed, Health, HttpHead, HttpReply, HttpRequest, HttpTicket, MAX_TIMER, Message, Refusal,
    Request,
};
pub use app_ctx::Ctx;
pub use app_metrics::AppMetrics;
pub use app_prepared::Prepared;
pub use app_run::Run;
pub use app_waker::AppWaker;
pub use apps::AppId;
pub use conn::ConnId;
pub use event_loop::{Server, ServerBuilder, Spawned};
pub use handle::ServerHandle;
pub use outbound::SharedFrame;
pub use readiness::Readiness;

pub(crate) use isolation::inject_panic;
pub(crate) use timers::after;
