//! Acting on a complete request head: upgrade the connection, or answer and close.

use std::time::Instant;

use super::app::{Refusal, Request};
use super::apps::AppId;
use super::conn::{ConnId, OpenConn, Phase, conn_mut};
use super::event_loop::Server;
use super::request::{Accepted, Answer, answer_request};
use super::timers::{TimerKind, after};
use crate::protocol::Session;
use crate::protocol::handshake::RequestHead;

impl Server {
    /// Answers a complete request head: upgrade, plain HTTP answer, or refusal.
    pub(super) fn on_request(&mut self, id: ConnId, head: &RequestHead, now: Instant) {
        let Some(port) = self.get(id).map(|c| c.port) else {
            return;
        };
        match answer_request(self, head, port, now) {
            Answer::Upgrade(accepted) => {
                if let Err(refusal) = self.ask_app(accepted.app, id, head, &accepted) {
                    self.stats.http_requests += 1;
                    self.stats.rejected(refusal.status);
                    return self.respond(id, refusal.into_response());
                }
                self.upgrade(id, head, accepted, now);
            }
            Answer::AppHttp(app) => {
                self.stats.http_requests += 1;
                self.start_app_http(id, head, app, now);
            }
            Answer::Respond(response) => {
                self.stats.http_requests += 1;
                if response.status >= 400 {
                    self.stats.rejected(response.status);

                    let target = head.redacted_target();
                    log::debug!("{id}: {} {target} -> {}", head.method, response.status);
                }
                self.respond(id, response);
            }
        }
    }

    /// Asks an app whether it takes an upgrade.
    fn ask_app(
        &mut self,
        app: AppId,
        id: ConnId,
        head: &RequestHead,
        accepted: &Accepted,
    ) -> Result<(), Refusal> {
        let Some(client) = self.get(id).map(|c| c.client) else {
            return Ok(());
        };
        let request = Request {
            head,
            client,
            identity: accepted.identity.as_ref(),
        };
        self.app_upgrade(app, &request)
    }

    /// Switches the connection to WebSocket: 101, session, heartbeat, its app's `on_open`.
    fn upgrade(&mut self, id: ConnId, head: &RequestHead, accepted: Accepted, now: Instant) {
        let Accepted {
            accept,
            app,
            limits,
            identity,
            deflate,
        } = accepted;
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        log::debug!(
            "{id}: upgraded {} from {}",
            head.redacted_target(),
            conn.client
        );
        let mut session = Session::server(limits);
        if let (Some(params), Some(config)) = (deflate, &self.config.compression) {
            session = session.with_deflate(params, config);
            self.stats.compressed_connections += 1;
        }
        conn.phase = Phase::Open(OpenConn { session, app });
        conn.out
            .append(&mut self.pool, |out| out.extend_from_slice(&accept));
        let client = conn.client;
        self.stats.upgrades_total += 1;
        self.dirty.push(id);
        let first_beat = after(now, self.config.ping_interval.min(self.config.idle_timeout));
        self.timers.arm(first_beat, id, TimerKind::Heartbeat);
        let request = Request {
            head,
            client,
            identity: identity.as_ref(),
        };
        self.app_open(app, id, &request, now);
    }
}
