//! Plain HTTP requests for an app's paths ([`super::App::on_http`]): the app may refuse
//! the head ([`super::App::on_http_head`]), the body is read whole (bounded by
//! `api.max_body_bytes`), the app answers, now or later (bounded by the handshake
//! timeout: 504), and the connection closes.

use std::time::Instant;

use super::app::{HttpHead, HttpReply, HttpRequest, HttpTicket};
use super::apps::AppId;
use super::conn::{BodyRequest, ConnId, Phase, conn_mut};
use super::event_loop::Server;
use crate::protocol::body_framing::{BodyFraming, body_framing};
use crate::protocol::handshake::{Rejection, RequestHead, validate_upgrade};
use crate::protocol::http::Response;

impl Server {
    /// A plain request's head for `app` is in: the app may refuse it at once
    /// ([`super::App::on_http_head`]); else its body is read by its framing (or refused:
    /// 411, 413, 400), and the app is asked once it is whole.
    pub(super) fn start_app_http(
        &mut self,
        id: ConnId,
        head: &RequestHead,
        app: AppId,
        now: Instant,
    ) {
        let Some(client) = self.get(id).map(|c| c.client) else {
            return;
        };
        let mut refused = None;
        self.with_app(app, None, now, |a, ctx| {
            refused = a.on_http_head(ctx, &HttpHead { head, client }).err();
        });
        if let Some(response) = refused {
            return self.send_app_response(id, head, response, Counted::ByApp);
        }
        let max = self.config.api.max_body_bytes;
        let (length, send_continue) = match body_framing(head, max) {
            BodyFraming::Length {
                length,
                send_continue,
            } => (length, send_continue),
            BodyFraming::Unstated => (0, false),
            BodyFraming::Chunked => {
                let refusal = Response::text(411, "send the body with Content-Length");
                return self.send_app_response(id, head, refusal, Counted::ByEngine);
            }
            BodyFraming::Malformed => {
                let refusal = Response::text(400, "bad Content-Length");
                return self.send_app_response(id, head, refusal, Counted::ByEngine);
            }
            BodyFraming::TooLarge => {
                let refusal = Response::text(413, &format!("body exceeds {max} bytes"));
                return self.send_app_response(id, head, refusal, Counted::ByEngine);
            }
        };
        self.await_body(id, length, send_continue, app, head);
        // A body that came with the head (or an empty one) is complete already.
        self.finish_body(id, now);
    }

    /// Switches a connection to reading the body of a request for `app` (after
    /// `100 Continue` when the client asked for it).
    pub(super) fn await_body(
        &mut self,
        id: ConnId,
        length: usize,
        send_continue: bool,
        app: AppId,
        head: &RequestHead,
    ) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        conn.phase = Phase::Body(Box::new(BodyRequest {
            length,
            app,
            head: Box::new(head.clone()),
            answer_pending: false,
        }));
        conn.pending = Vec::new();
        if send_continue {
            conn.out.append(&mut self.pool, |out| {
                out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n")
            });
            self.dirty.push(id);
        }
    }

    /// Once an app's request body is complete (and not already handed over): asks the
    /// app, and sends its answer (now, or once it gives one).
    pub(super) fn finish_body(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let Phase::Body(request) = &conn.phase else {
            return;
        };
        if conn.pending.len() < request.length || request.answer_pending {
            return;
        }
        let (app, head) = (request.app, request.head.clone());
        let body = conn.pending[..request.length].to_vec();
        let request = HttpRequest {
            head: &head,
            client: conn.client,
            body: &body,
            ticket: HttpTicket(id),
        };
        let mut reply = HttpReply::Decline;
        self.with_app(app, None, now, |a, ctx| reply = a.on_http(ctx, &request));
        match reply {
            HttpReply::Respond(response) => {
                self.send_app_response(id, &head, response, Counted::ByApp);
            }
            // What any non-upgrade request to a WebSocket path gets.
            HttpReply::Decline => {
                let refusal = validate_upgrade(&head, &self.config.subprotocols)
                    .err()
                    .unwrap_or(Rejection::NotAnUpgrade);
                self.send_app_response(id, &head, refusal.response(), Counted::ByEngine);
            }
            HttpReply::Later => {
                if let Some(conn) = conn_mut(&mut self.conns, id)
                    && let Phase::Body(request) = &mut conn.phase
                {
                    request.answer_pending = true;
                }
            }
        }
    }

    /// An app's answer to a request it said it would answer later; `false` if that
    /// request is no longer waiting (answered, timed out, the client gone) or is not
    /// `app`'s.
    pub(super) fn answer_later(
        &mut self,
        app: AppId,
        ticket: HttpTicket,
        response: Response,
    ) -> bool {
        let id = ticket.0;
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return false;
        };
        let Phase::Body(request) = &conn.phase else {
            return false;
        };
        if request.app != app || !request.answer_pending {
            return false;
        }
        let head = request.head.clone();
        self.send_app_response(id, &head, response, Counted::ByApp);
        true
    }

    /// A request the app said it would answer later is still unanswered at the deadline.
    pub(super) fn app_answer_overdue(&mut self, id: ConnId) -> bool {
        let waiting = self
            .get(id)
            .is_some_and(|c| matches!(&c.phase, Phase::Body(r) if r.answer_pending));
        if waiting {
            log::debug!("{id}: the app did not answer in time");
            self.stats.rejected(504);
            self.respond(
                id,
                Response::text(504, "the application did not answer in time"),
            );
        }
        waiting
    }

    /// Sends an answer to an app's request (its head only for `HEAD`) and closes.
    fn send_app_response(
        &mut self,
        id: ConnId,
        head: &RequestHead,
        response: Response,
        counted: Counted,
    ) {
        let response = if head.method == "HEAD" {
            response.for_head()
        } else {
            response
        };
        if counted == Counted::ByEngine && response.status >= 400 {
            self.stats.rejected(response.status);
        }
        self.respond(id, response);
    }
}

/// Who counts an answer's status: refusals the engine makes (the body's framing, a
/// declined request, the app's silence) are rejected requests in its figures; what an app
/// answers is the app's to count ([`super::App::metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// The engine's refusal: counted in `handshakes_rejected`.
    ByEngine,
    /// The app's answer.
    ByApp,
}
