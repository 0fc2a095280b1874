//! `POST /api/publish`: the backend's way to push messages into rooms, to users, or to
//! everyone, with one HTTP call.
//!
//! The request head is checked before any body is read: the API is off (404) without a
//! configured key; a wrong or missing key gets 401 (compared in constant time); the body
//! needs a `Content-Length` (411) within `max_body_bytes` (413). `Expect: 100-continue` is
//! honoured. The JSON body is then decoded by [`crate::hub::publish`] (400 with a JSON
//! error naming the problem) and delivered; the answer says to how many local connections.
//!
//! Clustered, the answer waits until Redis has every message of the request (200 with
//! `published` and the offsets), or 503 with `Retry-After` when it could not take them
//! all. A request resent with the same `Idempotency-Key` header within the dedupe window
//! (120 s) publishes each of its messages once and gets the same offsets.

use crate::server::inject_panic;

use serde::Serialize;

use super::clock;
use super::state::HubState;
use crate::hub::publish::decode_publish;
use crate::hub::{Origin, Routed};
use crate::protocol::body_framing::{BodyFraming, body_framing};
use crate::protocol::handshake::RequestHead;
use crate::protocol::http::Response;
use crate::server::ApiConfig;
use crate::server::ConnId;
use crate::server::Ctx;

/// A JSON error answer.
pub(crate) fn json_error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message })
        .to_string()
        .into_bytes();
    Response::with_body(status, "application/json", body)
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key from `Authorization: Bearer <key>`, or `""`. Never from the URL: proxies and
/// access logs keep URLs, and a key is a long-lived secret.
fn bearer_key(head: &RequestHead) -> &str {
    head.header("authorization")
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, key)| key.trim())
}

/// Checks the API key of any `/api/` request: 404 while the API is off (no key
/// configured), 401 for a missing or wrong key.
pub(crate) fn check_key(api: &ApiConfig, head: &RequestHead) -> Result<(), Response> {
    if api.keys.is_empty() {
        return Err(json_error(
            404,
            "api_off",
            "the server API is off: no API key is configured",
        ));
    }
    let key = bearer_key(head);
    if key.is_empty()
        || !api
            .keys
            .iter()
            .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes()))
    {
        let refusal = json_error(
            401,
            "unauthorized",
            "missing or wrong API key (Authorization: Bearer <key>)",
        );
        return Err(refusal.header("WWW-Authenticate", "Bearer"));
    }
    Ok(())
}

/// Checks a request body's framing: a `Content-Length` (411) within `max` bytes (413);
/// the body's length, and whether to answer `100 Continue` first.
pub(crate) fn body_to_read(head: &RequestHead, max: usize) -> Result<(usize, bool), Response> {
    Err(match body_framing(head, max) {
        BodyFraming::Length {
            length,
            send_continue,
        } => return Ok((length, send_continue)),
        BodyFraming::Chunked => {
            json_error(411, "length_required", "send the body with Content-Length")
        }
        BodyFraming::Unstated | BodyFraming::Malformed => {
            json_error(411, "length_required", "Content-Length is required")
        }
        BodyFraming::TooLarge => {
            json_error(413, "body_too_large", &format!("body exceeds {max} bytes"))
        }
    })
}

/// Checks a publish request's head before its body is read: key, method, length.
pub(crate) fn check_head(api: &ApiConfig, head: &RequestHead) -> Result<(), Response> {
    check_key(api, head)?;
    if head.method != "POST" {
        return Err(json_error(405, "method_not_allowed", "use POST").header("Allow", "POST"));
    }
    body_to_read(head, api.max_body_bytes).map(|_| ())
}

/// One message's result in the answer.
#[derive(Debug, Clone, Serialize)]
struct ItemResult {
    /// Local connections it was queued for (absent when it went to the cluster bus).
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered: Option<usize>,
    /// Its room history offset (history on).
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    /// Its room history epoch (clustered).
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
}

/// A clustered publish request waiting for Redis: each message's outcome once known
/// (`Err`: Redis could not take it).
#[derive(Debug)]
pub(crate) struct ApiWait {
    outcomes: Vec<Option<Result<ItemResult, ()>>>,
    batch: bool,
}

/// Redis's outcome for one message of a publish request, as the cluster link reports it
/// to the hub app, which holds the request ([`ApiWait::record`]).
#[derive(Debug)]
pub(crate) struct ApiOutcome {
    /// The request's connection.
    pub(crate) conn: ConnId,
    /// The message's index in the request.
    index: usize,
    /// Its position in the room's stream when published (`Err`: not published).
    outcome: Result<Option<(u64, String)>, ()>,
    /// Delivered on this node only, to this many (`when_redis_down = "local"`).
    delivered: Option<usize>,
}

impl ApiWait {
    /// Records one message's outcome; once every message has one, the answer: 200 with
    /// the offsets, or 503 when Redis did not take them all.
    pub(crate) fn record(&mut self, outcome: ApiOutcome) -> Option<Response> {
        let ApiOutcome {
            index,
            outcome,
            delivered,
            ..
        } = outcome;
        if let Some(slot) = self.outcomes.get_mut(index) {
            *slot = Some(outcome.map(|position| ItemResult {
                delivered,
                offset: position.as_ref().map(|(o, _)| *o),
                epoch: position.map(|(_, e)| e),
            }));
        }
        if self.outcomes.iter().any(Option::is_none) {
            return None;
        }
        let outcomes: Vec<Result<ItemResult, ()>> = self.outcomes.drain(..).flatten().collect();
        let total = outcomes.len();
        let published: Vec<ItemResult> = outcomes.into_iter().filter_map(Result::ok).collect();
        Some(if published.len() == total {
            answer(published, self.batch)
        } else {
            let message = format!(
                "{} of {total} messages were published; resend the request with the same \
                 Idempotency-Key to publish the rest once",
                published.len()
            );
            unavailable(&message)
        })
    }
}

impl From<Routed> for ItemResult {
    fn from(routed: Routed) -> Self {
        match routed {
            Routed::Delivered { recipients, offset } => Self {
                delivered: Some(recipients),
                offset,
                epoch: None,
            },
            Routed::Published => Self {
                delivered: None,
                offset: None,
                epoch: None,
            },
        }
    }
}

/// The answer to a successful publish.
#[derive(Debug, Serialize)]
struct Published {
    /// Local connections that received the messages, in total (0 when clustered: every
    /// node delivers from the bus).
    delivered: usize,
    /// The room history offset, for a single room message.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    /// The room history epoch, for a single clustered room message.
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
    /// `true` when the messages were published to the cluster (the other nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<bool>,
    /// Per message, for a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<ItemResult>>,
}

impl HubState {
    /// Decodes and delivers the body of publish request `id`: the answer, or (clustered)
    /// what to wait for; the hub's outbox is applied by the caller.
    pub(crate) fn publish(
        &mut self,
        ctx: &Ctx<'_>,
        id: ConnId,
        body: &[u8],
        key: Option<&str>,
    ) -> Result<Response, ApiWait> {
        inject_panic(body);
        let request = match decode_publish(body, self.hub.config()) {
            Ok(request) => request,
            Err(e) => return Ok(json_error(400, "bad_request", &e.0)),
        };
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| c.when_down() == crate::cluster::WhenDown::Refuse && !c.publisher_up())
        {
            self.counters.cluster_refusals += request.items.len() as u64;
            return Ok(unavailable("Redis is unavailable; retry later"));
        }
        let sender = self.sender_id.clone();
        let clustered = self.cluster.is_some();
        let results: Vec<ItemResult> = request
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let origin = clustered.then(|| Origin {
                    conn: id,
                    id: key.map(|k| serde_json::json!(format!("api:{k}:{i}")).to_string()),
                    api: Some(i),
                });
                let routed = self
                    .hub
                    .publish(item, &sender, origin, clock(ctx), &mut self.outbox);
                ItemResult::from(routed)
            })
            .collect();
        self.counters.messages_published += results.len() as u64;
        if clustered {
            return Err(ApiWait {
                outcomes: vec![None; results.len()],
                batch: request.batch,
            });
        }
        // The answer promises the messages are in history: write them first.
        let mut outbox = std::mem::take(&mut self.outbox);
        let written = self.write_history(&mut outbox);
        self.outbox = outbox;
        if !written {
            return Ok(unavailable(
                "the message could not be written to history; nothing was delivered",
            ));
        }
        Ok(answer(results, request.batch))
    }

    /// Redis's outcome for one message of a waiting publish request (`Err`: not
    /// published; `delivered`: delivered on this node only, `when_redis_down = "local"`),
    /// for the hub app, which holds the request.
    pub(crate) fn api_outcome(
        &mut self,
        origin: &Origin,
        outcome: Result<Option<(u64, String)>, ()>,
        delivered: Option<usize>,
    ) {
        if let Some(index) = origin.api {
            self.api_outcomes.push(ApiOutcome {
                conn: origin.conn,
                index,
                outcome,
                delivered,
            });
        }
    }
}

/// 503 `unavailable` with `Retry-After`.
fn unavailable(message: &str) -> Response {
    json_error(503, "unavailable", message).header("Retry-After", "1")
}

/// The 200 answer for these results.
fn answer(results: Vec<ItemResult>, batch: bool) -> Response {
    let delivered = results.iter().filter_map(|r| r.delivered).sum();
    let clustered = results.iter().any(|r| r.delivered.is_none());
    let (offset, epoch) = match results.first() {
        Some(first) if !batch => (first.offset, first.epoch.clone()),
        _ => (None, None),
    };
    let published = Published {
        delivered,
        offset,
        epoch,
        published: clustered.then_some(true),
        messages: batch.then_some(results),
    };
    let json = serde_json::to_vec(&published).unwrap_or_default();
    Response::with_body(200, "application/json", json)
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn key_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
