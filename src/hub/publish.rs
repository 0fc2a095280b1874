//! The publish API's requests: messages pushed by a backend into rooms, to users, or to
//! everyone, over HTTP (`POST /api/publish`), without a WebSocket.
//!
//! A body is one message (`{"room":"orders-42","type":"notification","payload":{…}}`, or
//! `"user_id"` instead of `"room"`, or neither for a broadcast) or a batch
//! (`{"messages":[…]}`). Decoding is strict: unknown fields, both `room` and `user_id`, a
//! missing payload, a reserved `type` or an oversized payload are refused with a message
//! naming the problem, and nothing of the request is delivered.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    Hub, HubConfig, Outbox, Publication, Routed, Target, time, valid_room_name, valid_user_id,
};
use crate::hub::Now;

/// The most messages in one batch.
pub const MAX_BATCH: usize = 100;
/// Message types the server itself uses; a publisher may not impersonate them.
const RESERVED_TYPES: [&str; 6] = ["welcome", "joined", "left", "presence", "ack", "error"];

/// A refused publish request: HTTP 400 with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishError(pub String);

/// One message to publish, decoded and checked.
#[derive(Debug, Clone)]
pub struct PublishItem<'a> {
    /// Who receives it.
    pub target: OwnedTarget,
    /// The `type` recipients see (default `notification`).
    pub kind: Cow<'a, str>,
    /// The payload, raw JSON.
    pub payload: &'a RawValue,
}

/// [`Target`] with owned names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedTarget {
    /// Every connection.
    All,
    /// A room's members.
    Room(String),
    /// Every connection of a user.
    User(String),
}

impl OwnedTarget {
    /// The borrowed form.
    pub fn as_target(&self) -> Target<'_> {
        match self {
            Self::All => Target::All,
            Self::Room(room) => Target::Room(room),
            Self::User(user) => Target::User(user),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBody<'a> {
    #[serde(borrow, default)]
    messages: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    room: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem<'a> {
    #[serde(borrow, default)]
    room: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

/// Keeps `"payload": null` as a present payload.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A decoded publish request.
#[derive(Debug, Clone)]
pub struct PublishRequest<'a> {
    /// The messages, in order.
    pub items: Vec<PublishItem<'a>>,
    /// Whether the body was a batch (`{"messages":[…]}`).
    pub batch: bool,
}

/// Decodes a publish body under the hub's limits: each payload at most
/// `max_message_bytes`, room names as clients may join them (`max_room_name_len`).
pub fn decode_publish<'a>(
    body: &'a [u8],
    limits: &HubConfig,
) -> Result<PublishRequest<'a>, PublishError> {
    let text = std::str::from_utf8(body).map_err(|_| PublishError("body is not UTF-8".into()))?;
    if !text.trim_start().starts_with('{') {
        return Err(PublishError("body must be a JSON object".into()));
    }
    let raw: RawBody<'_> =
        serde_json::from_str(text).map_err(|e| PublishError(format!("invalid JSON: {e}")))?;
    let Some(messages) = raw.messages else {
        let single = RawItem {
            room: raw.room,
            user_id: raw.user_id,
            kind: raw.kind,
            payload: raw.payload,
        };
        let item = check_item(single, limits)?;
        return Ok(PublishRequest {
            items: vec![item],
            batch: false,
        });
    };
    if raw.room.is_some() || raw.user_id.is_some() || raw.kind.is_some() || raw.payload.is_some() {
        return Err(PublishError(
            "send either one message or {\"messages\":[…]}, not both".into(),
        ));
    }
    if messages.is_empty() || messages.len() > MAX_BATCH {
        return Err(PublishError(format!(
            "messages must hold 1 to {MAX_BATCH} messages"
        )));
    }
    let items = messages
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let item: RawItem<'_> = serde_json::from_str(raw.get())
                .map_err(|e| PublishError(format!("messages[{i}]: {e}")))?;
            check_item(item, limits).map_err(|e| PublishError(format!("messages[{i}]: {}", e.0)))
        })
        .collect::<Result<_, _>>()?;
    Ok(PublishRequest { items, batch: true })
}

fn check_item<'a>(raw: RawItem<'a>, limits: &HubConfig) -> Result<PublishItem<'a>, PublishError> {
    let max_payload = limits.max_message_bytes;
    let fail = |m: &str| Err(PublishError(m.to_owned()));
    let Some(payload) = raw.payload else {
        return fail("field `payload` is required");
    };
    if payload.get().len() > max_payload {
        return Err(PublishError(format!("payload exceeds {max_payload} bytes")));
    }
    let kind = raw.kind.unwrap_or(Cow::Borrowed("notification"));
    let kind_ok = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !kind_ok {
        return fail("field `type` must be 1-64 characters of A-Z a-z 0-9 _ - .");
    }
    if RESERVED_TYPES.contains(&kind.as_ref()) {
        return Err(PublishError(format!(
            "type `{kind}` is reserved for the server's own messages"
        )));
    }
    let target = match (raw.room, raw.user_id) {
        (Some(_), Some(_)) => return fail("give `room` or `user_id`, not both"),
        (Some(room), None) if !valid_room_name(&room, limits) => {
            return fail("field `room` is not a valid room name");
        }
        (Some(room), None) => OwnedTarget::Room(room.into_owned()),
        (None, Some(user)) if !valid_user_id(&user) => {
            return fail("field `user_id` is not a valid user id");
        }
        (None, Some(user)) => OwnedTarget::User(user.into_owned()),
        (None, None) => OwnedTarget::All,
    };
    Ok(PublishItem {
        target,
        kind,
        payload,
    })
}

impl Hub {
    /// Delivers a published message to local connections; returns how many received it.
    /// Clustered, it goes to the bus for `origin` (the API request waiting for it).
    pub fn publish(
        &mut self,
        item: &PublishItem<'_>,
        sender: &str,
        origin: Option<super::Origin>,
        now: Now,
        out: &mut Outbox,
    ) -> Routed {
        let timestamp = time::rfc3339_millis(now.wall);
        let publication = Publication {
            kind: &item.kind,
            target: item.target.as_target(),
            sender,
            payload: item.payload,
            timestamp: &timestamp,
            at_ms: time::unix_millis(now.wall),
            position: None,
        };
        self.route(&publication, origin, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HubConfig {
        HubConfig {
            max_message_bytes: 1000,
            ..HubConfig::default()
        }
    }

    fn ok(body: &str) -> Vec<PublishItem<'_>> {
        decode_publish(body.as_bytes(), &limits())
            .unwrap_or_else(|e| panic!("{body}: {e:?}"))
            .items
    }

    fn err(body: &str) -> String {
        decode_publish(body.as_bytes(), &limits())
            .expect_err(body)
            .0
    }

    #[test]
    fn single_messages_and_targets() {
        let items =
            ok(r#"{"room":"orders-42","type":"notification","payload":{"title":"Shipped"}}"#);
        assert_eq!(items[0].target, OwnedTarget::Room("orders-42".into()));
        assert_eq!(items[0].payload.get(), r#"{"title":"Shipped"}"#);
        assert_eq!(
            ok(r#"{"user_id":"42","payload":1}"#)[0].target,
            OwnedTarget::User("42".into())
        );
        let all = ok(r#"{"payload":null}"#);
        assert_eq!(
            (all[0].target.clone(), all[0].kind.as_ref()),
            (OwnedTarget::All, "notification")
        );
    }

    #[test]
    fn batches() {
        let items = ok(
            r#"{"messages":[{"room":"a","payload":1},{"user_id":"u","type":"job.done","payload":2}]}"#,
        );
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].kind, "job.done");
        assert!(err(r#"{"messages":[]}"#).contains("1 to 100"));
        assert!(err(r#"{"messages":[{"payload":1}],"room":"a"}"#).contains("not both"));
        assert!(
            err(r#"{"messages":[{"payload":1},{"rom":"a","payload":1}]}"#)
                .starts_with("messages[1]: unknown field `rom`")
        );
    }

    #[test]
    fn room_names_use_the_configured_limit() {
        let body = format!(r#"{{"room":"{}","payload":1}}"#, "r".repeat(80));
        assert!(
            decode_publish(body.as_bytes(), &limits()).is_err(),
            "over 64"
        );
        let longer = HubConfig {
            max_room_name_len: 100,
            ..limits()
        };
        assert!(
            decode_publish(body.as_bytes(), &longer).is_ok(),
            "within 100"
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(err("nope").contains("JSON object"));
        assert!(err("{").contains("invalid JSON"));
        assert!(err(r#"{"room":"a"}"#).contains("`payload` is required"));
        assert!(err(r#"{"room":"a","user_id":"b","payload":1}"#).contains("not both"));
        assert!(err(r#"{"rooom":"a","payload":1}"#).contains("unknown field `rooom`"));
        assert!(err(r#"{"room":"a b","payload":1}"#).contains("room"));
        assert!(err(r#"{"type":"welcome","payload":1}"#).contains("reserved"));
        assert!(err(r#"{"type":"","payload":1}"#).contains("`type`"));
        let big = format!(r#"{{"payload":"{}"}}"#, "x".repeat(2000));
        assert!(err(&big).contains("exceeds 1000 bytes"));
    }
}
