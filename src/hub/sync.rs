//! `sync`: where a connection stands in its feeds (its private messages, the broadcasts),
//! and with `since` the messages it missed there, as `join` with `since` does for a room.
//!
//! A client keeps the `offset` and `epoch` of the last private message and broadcast it
//! got; after a reconnect it sends `{"type":"sync","feed":"private","since":{…}}` and gets
//! `synced` (with `recovered`), then the missed messages in order, then live ones, each
//! once. Clustered, a node whose own copy does not reach back far enough reads Redis, and
//! holds the live messages for that connection meanwhile.

use serde_json::value::RawValue;

use super::error::{ErrorCode, HubError};
use super::feeds::{BROADCAST, PRIVATE, Stream};
use super::messages::{self, Synced};
use super::request::Since;
use super::{Hub, Now, Outbox};
use crate::id::ConnId;

impl Hub {
    /// Answers a `sync` for `feed` (`private` or `broadcast`).
    pub(super) fn sync(
        &mut self,
        conn: ConnId,
        feed: &str,
        since: Option<&Since>,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HubError> {
        let member = self.members.get(&conn).ok_or_else(super::handlers::gone)?;
        let user = member.user.clone();
        let stream = match feed {
            PRIVATE => Stream::Inbox(&user),
            BROADCAST => Stream::Broadcasts,
            _ => {
                return Err(HubError::new(
                    ErrorCode::InvalidField,
                    "field `feed` must be \"private\" or \"broadcast\"",
                ));
            }
        };
        let key = stream.key().into_owned();
        self.forget_replay(conn, &key);
        let (recovered, replay) = self.recovery(&key, since, now);
        if recovered == Some(false)
            && self.bus
            && let Some(since) = since
        {
            // Clustered: this node's copy is short; Redis holds the feed's history.
            self.await_fetch(conn, &key, since, id, out);
            return Ok(());
        }
        let position = match (self.history.enabled(), self.bus) {
            (false, _) => None,
            // Clustered, positions come from Redis (none yet: the feed is empty).
            (true, true) => self.history.position(&key).filter(|(_, e)| !e.is_empty()),
            (true, false) => self.history.ensure(&key),
        };
        let reply = Synced {
            kind: "synced",
            id,
            feed,
            recovered,
            epoch: position.as_ref().map(|(_, epoch)| &**epoch),
            offset: position.as_ref().map(|(offset, _)| *offset),
        };
        out.send(conn, messages::encode(&reply));
        for frame in replay {
            out.send(conn, frame);
        }
        Ok(())
    }
}
