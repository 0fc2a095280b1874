//! The hub's WebSocket (`/ws`) as an application on the App API: the engine reads its
//! connections' messages, tells it of opens and closes, and knows nothing of rooms.
//!
//! Its state ([`crate::hub::Hub`], the outbox, the history log, the cluster link) still
//! lives in [`Server`], reached through the [`Ctx`] it is lent: the step before the
//! state moves into this struct (see the table in [`super`]).

use std::time::Instant;

use crate::auth::user_id::new_guest_id;
use crate::hub::Credentials;
use crate::protocol::Limits;
use crate::server::app::{App, Closed, Message, Request};
use crate::server::app_ctx::Ctx;
use crate::server::conn::ConnId;
use crate::server::event_loop::Server;
use crate::server::isolation::inject_panic;

/// The path the hub is routed at, unless an embedder's route takes it first.
pub(in crate::server) const HUB_PATH: &str = "/ws";

/// The hub at `/ws`.
#[derive(Debug)]
pub(in crate::server) struct HubApp {
    /// Frame and message limits of its connections (`server.hub_limits`).
    limits: Limits,
}

impl HubApp {
    /// The hub with its connections' frame and message limits.
    pub(in crate::server) fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

impl App for HubApp {
    fn limits(&self) -> Option<Limits> {
        Some(self.limits)
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, request: &Request<'_>) {
        let now = ctx.now();
        let server = &mut *ctx.server;
        let identity = request.identity();
        // Checked at the upgrade (`request::upgrade`): a bad `user_id` never gets here.
        let user = match identity {
            Some(identity) => Some(identity.user_id.clone()),
            None if server.config.auth.anonymous_is_guest() => None,
            None => request.query_param("user_id"),
        };
        let user = user.unwrap_or_else(new_guest_id);
        let credentials = match identity {
            Some(identity) => Credentials {
                authenticated: true,
                claims: identity.rooms.clone(),
                expires_at: Some(identity.expires_at),
            },
            None if server.config.auth.anonymous_is_guest() => Credentials::default(),
            None => Credentials::trusted(),
        };
        if let Some(expiry) = credentials.expires_at {
            log::debug!("{conn}: user {user}, token expires at {expiry}");
            server.arm_token_expiry(conn, expiry, now);
        }
        server.hub.connect_with(
            conn,
            &user,
            credentials,
            server.wall_now,
            &mut server.outbox,
        );
        server.apply_outbox(now);
    }

    /// The hub's answers go to the outbox, which the engine applies once the whole input
    /// is read (`read_conn`): one pass for a run of requests.
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        let server = &mut *ctx.server;
        match message {
            Message::Text(text) => {
                inject_panic(text.as_bytes());
                server
                    .hub
                    .on_text(conn, text, server.wall_now, &mut server.outbox);
            }
            Message::Binary(_) => server
                .hub
                .on_binary(conn, server.wall_now, &mut server.outbox),
        }
    }

    /// Every departure of the batch at once: one presence frame per remaining member per
    /// room, however many left (see [`super::settle`]).
    fn on_closes(&mut self, ctx: &mut Ctx<'_>, closed: &[Closed<'_>]) {
        let now = ctx.now();
        let leaving: Vec<ConnId> = closed.iter().map(|c| c.conn).collect();
        depart(ctx.server, &leaving, now);
    }
}

/// Tells the hub of departures and applies what it answers.
fn depart(server: &mut Server, leaving: &[ConnId], now: Instant) {
    server
        .hub
        .disconnect_all(leaving, server.wall_now, &mut server.outbox);
    server.apply_outbox(now);
}
