//! The hub's answer to each client request.
//!
//! [`Hub::on_text`] is where a request enters the hub: size check, decode, then one handler
//! per request type. Every refusal becomes an `error` reply; none closes the connection.

use serde_json::value::RawValue;

use super::error::{ErrorCode, HubError};
use super::messages::{self, Ack, ErrorReply, Membership};
use super::request::{self, Request};
use super::rules::Action;

use super::time::Now;
use super::{Hub, Outbox, Publication, Routed, Target, time, valid_room_name};
use crate::id::ConnId;
use crate::protocol::CloseCode;
use crate::protocol::frame::SharedFrame;

impl Hub {
    /// Handles one text message from `conn`.
    pub fn on_text(&mut self, conn: ConnId, text: &str, now: Now, out: &mut Outbox) {
        if !self.members.contains_key(&conn) {
            return;
        }
        // Every message counts against the rate limit, refused ones included; decoding
        // first lets the `rate_limited` reply echo the request's id.
        if text.len() > self.config.max_message_bytes {
            if !self.admit_message(conn, None, now, out) {
                return;
            }
            let limit = self.config.max_message_bytes;
            let err = HubError::new(
                ErrorCode::MessageTooLarge,
                format!("message exceeds {limit} bytes"),
            );
            return self.reply_error(conn, None, &err, out);
        }
        let decoded = request::decode(text);
        let id = match &decoded {
            Ok(envelope) => envelope.id,
            Err(refused) => refused.id,
        };
        if !self.admit_message(conn, id, now, out) {
            return;
        }
        let envelope = match decoded {
            Ok(envelope) => envelope,
            Err(refused) => return self.reply_error(conn, refused.id, &refused.error, out),
        };

        let id = envelope.id;
        let result = match envelope.request {
            Request::Join { room, since } => self.join(conn, &room, since.as_ref(), id, now, out),
            Request::Leave { room } => self.leave(conn, &room, id, now, out),
            Request::Chat { room, payload } => {
                self.chat(conn, room.as_deref(), payload, id, now, out)
            }
            Request::Private { recipient, payload } => {
                self.private(conn, &recipient, payload, id, now, out)
            }
            Request::Refresh { token } => self.refresh(conn, &token, id, now, out),
            Request::Sync { feed, since } => self.sync(conn, &feed, since.as_ref(), id, now, out),
        };
        if let Err(err) = result {
            self.reply_error(conn, id, &err, out);
        }
    }

    /// Sends an `error` reply and counts it by code (for `/metrics`).
    fn reply_error(
        &mut self,
        conn: ConnId,
        id: Option<&RawValue>,
        err: &HubError,
        out: &mut Outbox,
    ) {
        *self.errors.entry(err.code.as_str()).or_default() += 1;
        out.send(conn, messages::error(id, err));
    }

    /// Applies the user's message rate limit; false means the message is dropped.
    ///
    /// A dropped message is answered with `rate_limited` and the time until the next token;
    /// `abuse_strikes` drops in a row close the sending connection with 1008.
    fn admit_message(
        &mut self,
        conn: ConnId,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) -> bool {
        if !self.config.rate_limit_enabled {
            return true;
        }
        let rate = self.config.rate_limit;
        let Some(member) = self.members.get(&conn) else {
            return false;
        };
        let Some(entry) = self.users.get_mut(&member.user) else {
            return false;
        };
        let wait = match entry.bucket.try_take(rate, now.mono) {
            Ok(()) => {
                entry.strikes = 0;
                return true;
            }
            Err(wait) => wait,
        };
        entry.strikes += 1;
        if entry.strikes >= self.config.abuse_strikes {
            entry.strikes = 0;
            out.close(conn, CloseCode::POLICY_VIOLATION, "rate limit exceeded");
            return false;
        }
        let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let message = format!("too many messages; retry in {retry_after_ms} ms");
        let reply = ErrorReply {
            kind: "error",
            id,
            code: ErrorCode::RateLimited.as_str(),
            message: &message,
            retry_after_ms: Some(retry_after_ms),
        };
        *self
            .errors
            .entry(ErrorCode::RateLimited.as_str())
            .or_default() += 1;
        out.send(conn, messages::encode(&reply));
        false
    }

    /// Handles a binary message: the JSON endpoint takes text only.
    pub fn on_binary(&mut self, conn: ConnId, now: Now, out: &mut Outbox) {
        if !self.members.contains_key(&conn) || !self.admit_message(conn, None, now, out) {
            return;
        }
        let err = HubError::new(
            ErrorCode::BinaryNotSupported,
            "this endpoint takes JSON text frames only",
        );
        self.reply_error(conn, None, &err, out);
    }

    pub(super) fn check_room_name(&self, room: &str) -> Result<(), HubError> {
        if valid_room_name(room, &self.config) {
            return Ok(());
        }
        let max = self.config.max_room_name_len;
        Err(HubError::new(
            ErrorCode::InvalidRoom,
            format!("room names are 1-{max} characters of A-Z a-z 0-9 _ - . : @"),
        ))
    }

    pub(super) fn check_join_limits(&self, conn: ConnId, room: &str) -> Result<(), HubError> {
        let rooms = self.members.get(&conn).map_or(0, |m| m.rooms.len());
        if rooms >= self.config.max_rooms_per_connection {
            let max = self.config.max_rooms_per_connection;
            return Err(HubError::new(
                ErrorCode::LimitExceeded,
                format!("a connection may be in at most {max} rooms"),
            ));
        }
        let members = self.rooms.get(room).map_or(0, |r| r.conn_count());
        if members >= self.config.max_members_per_room {
            return Err(HubError::new(
                ErrorCode::LimitExceeded,
                format!("room `{room}` is full"),
            ));
        }
        Ok(())
    }

    fn leave(
        &mut self,
        conn: ConnId,
        room: &str,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HubError> {
        self.leave_because(conn, room, id, None, now, out)
    }

    /// Takes `conn` out of `room` and answers `left`, with the server's `reason` when the
    /// client did not ask for it.
    pub(super) fn leave_because(
        &mut self,
        conn: ConnId,
        room: &str,
        id: Option<&RawValue>,
        reason: Option<&'static str>,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HubError> {
        let member = self.members.get_mut(&conn).ok_or_else(gone)?;
        let Some(index) = member.rooms.iter().position(|r| &**r == room) else {
            return Err(not_member(room));
        };
        member.rooms.swap_remove(index);
        let user = member.user.clone();
        let timestamp = time::rfc3339_millis(now.wall);
        let members = self
            .leave_room(conn, &user, room, &timestamp, out)
            .unwrap_or(0);
        let reply = Membership {
            kind: "left",
            id,
            room,
            members,
            users: None,
            recovered: None,
            epoch: None,
            offset: None,
            reason,
        };
        out.send(conn, messages::encode(&reply));
        Ok(())
    }

    fn chat(
        &mut self,
        conn: ConnId,
        room: Option<&str>,
        payload: &RawValue,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HubError> {
        let sender = self.members.get(&conn).ok_or_else(gone)?.user.clone();
        let target = match room {
            Some(room) => {
                self.check_room_name(room)?;
                if !self.rooms.get(room).is_some_and(|r| r.contains(conn)) {
                    return Err(not_member(room));
                }
                self.authorize(conn, Action::Publish, room)?;
                Target::Room(room)
            }
            None => {
                self.authorize_broadcast(conn)?;
                Target::All
            }
        };
        self.send_from(conn, "chat", target, &sender, payload, id, now, out);
        Ok(())
    }

    fn private(
        &mut self,
        conn: ConnId,
        recipient: &str,
        payload: &RawValue,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HubError> {
        let sender = self.members.get(&conn).ok_or_else(gone)?.user.clone();
        if !self.bus && self.connections_of(recipient) == 0 {
            let shown: String = recipient.chars().take(64).collect();
            return Err(HubError::new(
                ErrorCode::RecipientNotConnected,
                format!("user `{shown}` is not connected"),
            ));
        }
        self.authorize_private(conn, recipient)?;
        self.send_from(
            conn,
            "private",
            Target::User(recipient),
            &sender,
            payload,
            id,
            now,
            out,
        );
        Ok(())
    }

    /// Routes a client's message stamped with `now`, and acks it when it carried an id.
    #[allow(clippy::too_many_arguments)]
    fn send_from(
        &mut self,
        conn: ConnId,
        kind: &str,
        target: Target<'_>,
        sender: &str,
        payload: &RawValue,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) {
        let timestamp = time::rfc3339_millis(now.wall);
        let at_ms = time::unix_millis(now.wall);
        let publication = Publication {
            kind,
            target,
            sender,
            payload,
            timestamp: &timestamp,
            at_ms,
            position: None,
        };
        let origin = super::Origin {
            conn,
            id: id.map(|id| id.get().to_owned()),
            api: None,
        };
        let persisted = out.persist.len();
        match self.route(&publication, Some(origin.clone()), out) {
            // Clustered: acked by `answer` once Redis has it.
            Routed::Published => {}
            delivered => {
                let ack = ack(conn, id, delivered, out);
                // With a history log, the ack stands only if the write succeeds.
                if out.persist.len() > persisted
                    && let Some(record) = out.persist.last_mut()
                {
                    record.sender = Some(origin);
                    record.ack = ack;
                }
            }
        }
    }
}

/// Sends an `ack` when the request carried an id; returns it.
fn ack(
    conn: ConnId,
    id: Option<&RawValue>,
    routed: Routed,
    out: &mut Outbox,
) -> Option<SharedFrame> {
    let id = id?;
    let (delivered, offset, published) = match routed {
        Routed::Delivered { recipients, offset } => (Some(recipients), offset, None),
        Routed::Published => (None, None, Some(true)),
    };
    let frame = messages::encode(&Ack {
        kind: "ack",
        id,
        delivered,
        offset,
        published,
        epoch: None,
    });
    out.send(conn, frame.clone());
    Some(frame)
}

fn not_member(room: &str) -> HubError {
    HubError::new(
        ErrorCode::NotMember,
        format!("not a member of room `{room}`"),
    )
}

/// The connection vanished between checks (cannot happen within one call; kept total).
pub(super) fn gone() -> HubError {
    HubError::new(ErrorCode::InvalidField, "connection is not registered")
}
