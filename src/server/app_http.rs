//! Plain HTTP requests for an app's paths ([`super::App::on_http`]): the body is read whole
//! (bounded by `api.max_body_bytes`), the app answers, the connection closes.

use std::time::Instant;

use super::app::HttpRequest;
use super::apps::AppId;
use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::request::{Answer, BodyFor};
use crate::protocol::handshake::{Rejection, RequestHead, validate_upgrade};
use crate::protocol::http::Response;

/// Decides how to read a plain request for `app`: its body's length, or a refusal.
pub(super) fn start(server: &Server, head: &RequestHead, app: AppId) -> Answer {
    // RFC 9112 §6: a body is framed by Content-Length here; chunked bodies are refused.
    if head.header("transfer-encoding").is_some() {
        return Answer::Respond(Response::text(411, "send the body with Content-Length"));
    }
    let length = match head.header("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(length)) => length,
        Some(Err(_)) => return Answer::Respond(Response::text(400, "bad Content-Length")),
    };
    let max = server.config.api.max_body_bytes;
    if length > max {
        return Answer::Respond(Response::text(413, &format!("body exceeds {max} bytes")));
    }
    Answer::ReadBody {
        length,
        send_continue: head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        purpose: BodyFor::App(app, Box::new(head.clone())),
    }
}

impl Server {
    /// Once an app's request body is complete: asks the app, sends its answer, closes.
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
        if conn.pending.len() < request.length {
            return;
        }
        let (app, head) = (*app, head.clone());
        let body = conn.pending[..request.length].to_vec();
        let request = HttpRequest {
            head: &head,
            client: conn.client,
            body: &body,
        };
        let mut answer = None;
        self.with_app(app, None, now, |a, ctx| answer = a.on_http(ctx, &request));
        let response = match answer {
            Some(response) if head.method == "HEAD" => response.for_head(),
            Some(response) => response,
            // What any non-upgrade request to a WebSocket path gets.
            None => validate_upgrade(&head, &self.config.subprotocols)
                .err()
                .unwrap_or(Rejection::NotAnUpgrade)
                .response(),
        };
        if response.status >= 400 {
            self.stats.rejected(response.status);
        }
        self.respond(id, response);
    }
}
