//! Plain HTTP requests for an app's paths ([`super::App::on_http`]): the body is read whole
//! (bounded by `api.max_body_bytes`), the app answers, now or later (bounded by the
//! handshake timeout: 504), and the connection closes.

use std::time::Instant;

use super::app::{HttpReply, HttpRequest, HttpTicket};
use super::apps::AppId;
use super::conn::{ConnId, Phase, Waiting, conn_mut};
use super::event_loop::Server;
use super::request::{Answer, BodyFor, BodyFraming, body_framing};
use crate::protocol::handshake::{Rejection, RequestHead, validate_upgrade};
use crate::protocol::http::Response;

/// Decides how to read a plain request for `app`: its body's length, or a refusal.
pub(super) fn start(server: &Server, head: &RequestHead, app: AppId) -> Answer {
    let max = server.config.api.max_body_bytes;
    let (length, send_continue) = match body_framing(head, max) {
        BodyFraming::Length {
            length,
            send_continue,
        } => (length, send_continue),
        BodyFraming::Unstated => (0, false),
        BodyFraming::Chunked => {
            return Answer::Respond(Response::text(411, "send the body with Content-Length"));
        }
        BodyFraming::Malformed => {
            return Answer::Respond(Response::text(400, "bad Content-Length"));
        }
        BodyFraming::TooLarge => {
            return Answer::Respond(Response::text(413, &format!("body exceeds {max} bytes")));
        }
    };
    Answer::ReadBody {
        length,
        send_continue,
        purpose: BodyFor::App(app, Box::new(head.clone())),
    }
}

impl Server {
    /// Once an app's request body is complete: asks the app, and sends its answer (now,
    /// or once it gives one).
    pub(super) fn finish_app_body(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = conn_mut(&mut self.conns, id) else {
            return;
        };
        let Phase::Body(request) = &conn.phase else {
            return;
        };
        let BodyFor::App(app, head) = &request.purpose else {
            return;
        };
        if conn.pending.len() < request.length || request.waiting.is_some() {
            return;
        }
        let (app, head) = (*app, head.clone());
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
            HttpReply::Respond(response) => self.send_app_response(id, &head, response),
            // What any non-upgrade request to a WebSocket path gets.
            HttpReply::Decline => {
                let refusal = validate_upgrade(&head, &self.config.subprotocols)
                    .err()
                    .unwrap_or(Rejection::NotAnUpgrade);
                self.send_app_response(id, &head, refusal.response());
            }
            HttpReply::Later => {
                if let Some(conn) = conn_mut(&mut self.conns, id)
                    && let Phase::Body(request) = &mut conn.phase
                {
                    request.waiting = Some(Waiting::App);
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
        let BodyFor::App(of, head) = &request.purpose else {
            return false;
        };
        if *of != app || !matches!(request.waiting, Some(Waiting::App)) {
            return false;
        }
        let head = head.clone();
        self.send_app_response(id, &head, response);
        true
    }

    /// A request the app said it would answer later is still unanswered at the deadline.
    pub(super) fn app_answer_overdue(&mut self, id: ConnId) -> bool {
        let waiting = self.get(id).is_some_and(
            |c| matches!(&c.phase, Phase::Body(r) if matches!(r.waiting, Some(Waiting::App))),
        );
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

    /// Sends an app's answer (its head only for `HEAD`) and closes.
    fn send_app_response(&mut self, id: ConnId, head: &RequestHead, response: Response) {
        let response = if head.method == "HEAD" {
            response.for_head()
        } else {
            response
        };
        if response.status >= 400 {
            self.stats.rejected(response.status);
        }
        self.respond(id, response);
    }
}
