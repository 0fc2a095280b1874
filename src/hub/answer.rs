//! Answering a clustered client's message once the cluster knows its fate: `ack` when
//! Redis has it (with the offset and epoch it got), `unavailable` when Redis could not take
//! it, or, with `when_redis_down = "local"`, an `ack` saying how many local connections got
//! it.

use serde_json::value::RawValue;

use super::error::ErrorCode;
use super::messages::{self, Ack, ErrorReply};
use super::{Hub, Origin, Outbox, Routed};

impl Hub {
    /// Answers a clustered client's message: `ack` once Redis has it, or `unavailable`.
    pub fn answer(&mut self, origin: &Origin, answer: Answer<'_>, out: &mut Outbox) {
        if !self.members.contains_key(&origin.conn) {
            return;
        }
        let id = origin
            .id
            .as_deref()
            .and_then(|id| RawValue::from_string(id.to_owned()).ok());
        let (routed, epoch) = match answer {
            Answer::Published(Some((offset, epoch))) => (
                Routed::Delivered {
                    recipients: 0,
                    offset: Some(offset),
                },
                Some(epoch),
            ),
            Answer::Published(None) => (Routed::Published, None),
            Answer::Delivered(recipients) => (
                Routed::Delivered {
                    recipients,
                    offset: None,
                },
                None,
            ),
            Answer::Unavailable {
                retry_after_ms,
                why,
            } => {
                let reply = ErrorReply {
                    kind: "error",
                    id: id.as_deref(),
                    code: ErrorCode::Unavailable.as_str(),
                    message: why,
                    retry_after_ms: Some(retry_after_ms),
                };
                *self
                    .errors
                    .entry(ErrorCode::Unavailable.as_str())
                    .or_default() += 1;
                out.send(origin.conn, messages::encode(&reply));
                return;
            }
        };
        let Some(id) = id else { return };
        let (delivered, offset, published) = match (routed, epoch) {
            (Routed::Delivered { offset, .. }, Some(_)) => (None, offset, Some(true)),
            (Routed::Delivered { recipients, .. }, None) => (Some(recipients), None, None),
            (Routed::Published, _) => (None, None, Some(true)),
        };
        out.send(
            origin.conn,
            messages::encode(&Ack {
                kind: "ack",
                id: &id,
                delivered,
                offset,
                published,
                epoch,
            }),
        );
    }
}

/// How a clustered message ended, for [`Hub::answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// In Redis: its history (offset, epoch) for room messages with history.
    Published(Option<(u64, &'a str)>),
    /// Redis away and `when_redis_down = "local"`: delivered to this node's recipients only.
    Delivered(usize),
    /// Not published (nothing was delivered): the sender may retry after this long.
    Unavailable {
        /// Milliseconds to wait before retrying.
        retry_after_ms: u64,
        /// What failed, for the error's `message`.
        why: &'a str,
    },
}
