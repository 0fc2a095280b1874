//! Where the room rules are applied: one function per kind of request, each called where
//! that request enters the hub. Also the `refresh` request, which renews a connection's
//! token without reconnecting.

use serde::Serialize;
use serde_json::value::RawValue;

use super::error::{ErrorCode, HubError};
use super::rules::{Access, Action, Principal};
use super::{Hub, Now, Outbox, PrivatePolicy, messages};
use crate::auth::Authenticator;
use crate::id::ConnId;

/// `refreshed`: the answer to a successful `refresh`.
#[derive(Debug, Serialize)]
struct Refreshed<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
    /// When the new token expires, Unix seconds.
    expires_at: u64,
}

fn forbidden(message: String) -> HubError {
    HubError::new(ErrorCode::Forbidden, message)
}

impl Hub {
    fn principal(&self, conn: ConnId) -> Option<Principal<'_>> {
        let member = self.members.get(&conn)?;
        Some(Principal {
            user: &member.user,
            authenticated: member.credentials.authenticated,
            claims: &member.credentials.claims,
        })
    }

    /// Checks the room rules for `action` in `room`.
    pub(super) fn authorize(
        &self,
        conn: ConnId,
        action: Action,
        room: &str,
    ) -> Result<(), HubError> {
        let who = self
            .principal(conn)
            .ok_or_else(|| forbidden("connection is not registered".into()))?;
        if self.config.rules.allows(action, room, &who) {
            return Ok(());
        }
        let verb = match action {
            Action::Join => "join",
            Action::Publish => "publish to",
        };
        Err(forbidden(format!("not allowed to {verb} room `{room}`")))
    }

    /// The rooms `conn` is in that its current credentials would not let it join.
    fn rooms_no_longer_allowed(&self, conn: ConnId) -> Vec<String> {
        let (Some(who), Some(member)) = (self.principal(conn), self.members.get(&conn)) else {
            return Vec::new();
        };
        member
            .rooms
            .iter()
            .filter(|room| !self.config.rules.allows(Action::Join, room, &who))
            .map(|room| room.to_string())
            .collect()
    }

    /// Checks who may send a global broadcast.
    pub(super) fn authorize_broadcast(&self, conn: ConnId) -> Result<(), HubError> {
        let who = self
            .principal(conn)
            .ok_or_else(|| forbidden("connection is not registered".into()))?;
        let allowed = match self.config.broadcast {
            Access::Anyone => true,
            Access::Authenticated => who.authenticated,
            Access::Claim | Access::Owner | Access::Server => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(forbidden("not allowed to broadcast to everyone".into()))
        }
    }

    /// Checks the private-message policy between `conn`'s user and `recipient`.
    pub(super) fn authorize_private(&self, conn: ConnId, recipient: &str) -> Result<(), HubError> {
        match self.config.private_messages {
            PrivatePolicy::Anyone => Ok(()),
            PrivatePolicy::Nobody => Err(forbidden("private messages are disabled".into())),
            PrivatePolicy::SharedRoom => {
                if self.shares_a_room(conn, recipient) {
                    Ok(())
                } else {
                    Err(forbidden(format!(
                        "private messages go only to users sharing a room; `{recipient}` shares none"
                    )))
                }
            }
        }
    }

    /// Whether the user of `conn`, on any of their connections, is in a room where
    /// `recipient` has a connection. The policy is between users, not connections: a tab
    /// in no room may write to someone its user's other tab shares a room with. Clustered,
    /// `recipient` may be in the room on any node.
    fn shares_a_room(&self, conn: ConnId, recipient: &str) -> bool {
        let Some(user) = self.user_of(conn) else {
            return false;
        };
        self.users
            .get(user)
            .into_iter()
            .flat_map(|entry| &entry.conns)
            .filter_map(|c| self.members.get(c))
            .flat_map(|member| &member.rooms)
            .any(|room| self.in_room_anywhere(room, recipient))
    }

    /// `{"type":"refresh","token":…}`: verifies the token like at connect and, if it names
    /// the same user, renews the connection's expiry and claims. Rooms the new claims no
    /// longer admit the connection to are left (`left` with reason `forbidden`) before the
    /// `refreshed` answer, so it stops reading them at once.
    pub(super) fn refresh(
        &mut self,
        conn: ConnId,
        token: &str,
        id: Option<&RawValue>,
        now: Now,
        out: &mut Outbox,
    ) -> Result<(), HubError> {
        if let Authenticator::None = self.auth {
            return Err(forbidden("authentication is not enabled".into()));
        }
        let identity = self
            .auth
            .verify_token(token, now.wall)
            .map_err(|e| HubError::new(ErrorCode::InvalidToken, format!("refresh refused: {e}")))?;
        let member = self
            .members
            .get_mut(&conn)
            .ok_or_else(|| forbidden("connection is not registered".into()))?;
        if identity.user_id != *member.user {
            return Err(forbidden(
                "refresh refused: the token is for another user".into(),
            ));
        }
        member.credentials.expires_at = Some(identity.expires_at);
        member.credentials.claims = identity.rooms;
        for room in self.rooms_no_longer_allowed(conn) {
            // The connection is a member (listed just now), so leaving cannot fail.
            let _ = self.leave_because(conn, &room, None, Some("forbidden"), now, out);
        }
        out.renewed.push(conn);
        let reply = Refreshed {
            kind: "refreshed",
            id,
            expires_at: identity.expires_at,
        };
        out.send(conn, messages::encode(&reply));
        Ok(())
    }
}
