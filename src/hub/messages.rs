//! Server → client messages on `/ws`, each serialized once into a shared text frame.
//!
//! A message for N recipients is turned into JSON once and framed once; every recipient's
//! queue then holds a reference to the same bytes. `payload` and the client's `id` are raw
//! JSON and are written out exactly as they came in.

use serde::Serialize;
use serde_json::value::RawValue;

use super::error::HubError;
use crate::protocol::OpCode;
use crate::protocol::frame::{SharedFrame, shared_frame};

/// Serializes `message` and frames it as one text frame.
pub fn encode(message: &impl Serialize) -> SharedFrame {
    // Serializing these structs cannot fail: keys are strings, raw values are valid JSON.
    let json = serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec());
    shared_frame(OpCode::Text, &json)
}

/// `welcome`: sent once after the upgrade.
#[derive(Debug, Serialize)]
pub struct Welcome<'a> {
    /// Always `"welcome"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The user this connection acts as.
    pub user_id: &'a str,
    /// This connection's id (unique for the server's lifetime).
    pub connection_id: String,
    /// Server time, RFC 3339 UTC with milliseconds.
    pub timestamp: &'a str,
}

/// `joined` / `left`: the answer to a join or leave.
#[derive(Debug, Serialize)]
pub struct Membership<'a> {
    /// `"joined"` or `"left"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The client's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a RawValue>,
    /// The room.
    pub room: &'a str,
    /// Distinct users in the room now.
    pub members: usize,
    /// Some of the users in the room, sorted (joined only; at most `max_listed_users`, any
    /// of them when there are more; `members` is the exact count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<&'a str>>,
    /// The join recovered history (`since` given): every missed message was replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// The room's history epoch (history on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<&'a str>,
    /// The room's latest offset (history on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Why the server took the connection out of the room (`left` only; absent when the
    /// client asked): `forbidden` after a `refresh` whose token no longer grants the room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// `synced`: the answer to a `sync`: the feed's position and, with `since`, whether every
/// missed message follows (as `joined` does for a room).
#[derive(Debug, Serialize)]
pub struct Synced<'a> {
    /// Always `"synced"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The client's request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a RawValue>,
    /// `private` or `broadcast`.
    pub feed: &'a str,
    /// `since` was given: every message after it follows this reply (`false`: not all
    /// could be, reload what the feed stands for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// The feed's history epoch (history on, once the feed has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<&'a str>,
    /// The feed's latest offset (with `epoch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// `presence`: a user joined or left a room this client is in.
#[derive(Debug, Serialize)]
pub struct Presence<'a> {
    /// Always `"presence"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The room.
    pub room: &'a str,
    /// The user.
    pub user_id: &'a str,
    /// `"join"` or `"leave"`.
    pub action: &'static str,
    /// Distinct users in the room now.
    pub members: usize,
    /// When, RFC 3339.
    pub timestamp: &'a str,
}

/// A delivered `chat`, `private` or published message.
#[derive(Debug, Serialize)]
pub struct Delivery<'a> {
    /// `"chat"`, `"private"`, or the publisher's type (`"notification"`).
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The room, for room messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<&'a str>,
    /// The recipient user, for private messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<&'a str>,
    /// Who sent it (`"server"` for the publish API).
    pub sender_id: &'a str,
    /// When the server accepted it, RFC 3339 UTC with milliseconds.
    pub timestamp: &'a str,
    /// The room history offset (history on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The room history epoch (history on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<&'a str>,
    /// The sender's payload, untouched.
    pub payload: &'a RawValue,
}

/// `ack`: the answer to a `chat` or `private` that carried an `id`.
#[derive(Debug, Serialize)]
pub struct Ack<'a> {
    /// Always `"ack"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The client's request id.
    pub id: &'a RawValue,
    /// Local connections the message was queued for (absent when it went to the cluster
    /// bus: every node, this one included, delivers it from there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered: Option<usize>,
    /// The room history offset the message got (history on, single node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// `true` when the message is in the cluster's shared history (or on its bus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<bool>,
    /// The room history epoch of `offset` (clustered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<&'a str>,
}

/// `reset`: the room's delivery continues after `offset` of `epoch`, and what came before
/// it could not all be delivered (history trimmed or lost, or a new epoch): a client that
/// needs the room complete must reload it. Sent to members instead of a silent gap.
#[derive(Debug, Serialize)]
pub struct Reset<'a> {
    /// Always `"reset"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The room, for a room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<&'a str>,
    /// The feed (`private` or `broadcast`), for a feed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<&'a str>,
    /// The epoch the next messages belong to.
    pub epoch: &'a str,
    /// The offset delivery continues after (the next message is `offset + 1`).
    pub offset: u64,
}

/// `error`: a refused request. The connection stays open.
#[derive(Debug, Serialize)]
pub struct ErrorReply<'a> {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The client's request id, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a RawValue>,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// A human explanation.
    pub message: &'a str,
    /// For `rate_limited`: milliseconds until a message would be accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Encodes an error reply.
pub fn error(id: Option<&RawValue>, err: &HubError) -> SharedFrame {
    encode(&ErrorReply {
        kind: "error",
        id,
        code: err.code.as_str(),
        message: &err.message,
        retry_after_ms: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::error::ErrorCode;
    use crate::protocol::{Decoded, FrameHeader};

    fn text_of(frame: &[u8]) -> String {
        let Ok(Decoded::Complete(h, n)) = FrameHeader::decode(frame) else {
            panic!()
        };
        assert!(h.fin && h.mask.is_none() && h.opcode == OpCode::Text);
        String::from_utf8(frame[n..].to_vec()).unwrap()
    }

    #[test]
    fn delivery_passes_payload_through() {
        let payload = RawValue::from_string(r#"{"b": 2,  "a":1}"#.into()).unwrap();
        let frame = encode(&Delivery {
            kind: "chat",
            room: Some("lobby"),
            recipient_id: None,
            sender_id: "42",
            timestamp: "2026-11-26T00:00:00.000Z",
            offset: None,
            epoch: None,
            payload: &payload,
        });
        assert_eq!(
            text_of(&frame),
            r#"{"type":"chat","room":"lobby","sender_id":"42","timestamp":"2026-11-26T00:00:00.000Z","payload":{"b": 2,  "a":1}}"#
        );
    }

    #[test]
    fn error_echoes_id() {
        let id = RawValue::from_string("7".into()).unwrap();
        let frame = error(
            Some(&id),
            &HubError::new(ErrorCode::NotMember, "not in room `x`"),
        );
        assert_eq!(
            text_of(&frame),
            r#"{"type":"error","id":7,"code":"not_member","message":"not in room `x`"}"#
        );
    }
}
