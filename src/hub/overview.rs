//! What the server API (`/api/rooms`, `/api/rooms/{room}/presence`, `/api/rooms/{room}/history`,
//! `/api/disconnect`) reads about this node's hub. Plain reads of the hub's own tables:
//! clustered, the server asks every node for its part and adds them up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::Hub;
use super::delivery::delivery_frame;
use super::remote::RemoteMessage;
use crate::id::ConnId;
use crate::protocol::frame::{Decoded, FrameHeader};

/// One room's members on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCount {
    /// The room.
    pub room: String,
    /// Distinct users in it.
    pub users: usize,
    /// Their connections in it.
    pub connections: usize,
}

/// One user's connections in a room on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCount {
    /// The user.
    pub user_id: String,
    /// Their connections that are members.
    pub connections: usize,
}

/// A page of a room's history, as clients receive the messages.
#[derive(Debug, Serialize)]
pub struct HistoryPage {
    /// The room.
    pub room: String,
    /// The room's epoch.
    pub epoch: String,
    /// The offset of the room's last message.
    pub last: u64,
    /// The messages after `since`, oldest first, each the JSON object clients got.
    pub messages: Vec<Box<RawValue>>,
}

impl Hub {
    /// Every room with members on this node, by name.
    pub fn room_counts(&self) -> Vec<RoomCount> {
        let mut rooms: Vec<RoomCount> = self
            .rooms
            .names()
            .filter_map(|name| {
                let room = self.rooms.get(name)?;
                Some(RoomCount {
                    room: name.to_string(),
                    users: room.user_count(),
                    connections: room.conn_count(),
                })
            })
            .collect();
        rooms.sort_unstable_by(|a, b| a.room.cmp(&b.room));
        rooms
    }

    /// The users in `room` on this node with their member connections, by user id (empty
    /// when nobody is in it here).
    pub fn room_users(&self, room: &str) -> Vec<UserCount> {
        let Some(state) = self.rooms.get(room) else {
            return Vec::new();
        };
        let mut users: Vec<UserCount> = state
            .user_connections()
            .map(|(user, connections)| UserCount {
                user_id: user.to_owned(),
                connections,
            })
            .collect();
        users.sort_unstable_by(|a, b| a.user_id.cmp(&b.user_id));
        users
    }

    /// Every connection of `user` on this node.
    pub fn user_connections(&self, user: &str) -> Vec<ConnId> {
        self.users
            .get(user)
            .map_or_else(Vec::new, |entry| entry.conns.clone())
    }

    /// Whether room history is kept.
    pub fn history_enabled(&self) -> bool {
        self.history.enabled()
    }

    /// Up to `limit` messages of `room` after offset `since` (within the TTL at `now_ms`),
    /// from this node's history (`None`: the room has none).
    pub fn history_page(
        &self,
        room: &str,
        since: u64,
        limit: usize,
        now_ms: u64,
    ) -> Option<HistoryPage> {
        let (epoch, last, frames) = self.history.entries_after(room, since, limit, now_ms)?;
        let messages = frames
            .iter()
            .filter_map(|frame| frame_json(frame))
            .collect();
        Some(HistoryPage {
            room: room.to_owned(),
            epoch: epoch.to_string(),
            last,
            messages,
        })
    }
}

/// Adds up the nodes' room counts: one entry per room, by name.
pub fn merge_room_counts(parts: impl IntoIterator<Item = RoomCount>) -> Vec<RoomCount> {
    let mut rooms: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for part in parts {
        let entry = rooms.entry(part.room).or_default();
        entry.0 += part.users;
        entry.1 += part.connections;
    }
    rooms
        .into_iter()
        .map(|(room, (users, connections))| RoomCount {
            room,
            users,
            connections,
        })
        .collect()
}

/// Adds up the nodes' user counts of one room: one entry per user, by user id.
pub fn merge_user_counts(parts: impl IntoIterator<Item = UserCount>) -> Vec<UserCount> {
    let mut users: BTreeMap<String, usize> = BTreeMap::new();
    for part in parts {
        *users.entry(part.user_id).or_default() += part.connections;
    }
    users
        .into_iter()
        .map(|(user_id, connections)| UserCount {
            user_id,
            connections,
        })
        .collect()
}

/// The JSON object clients got for a message read back from the cluster's history.
pub fn client_json(message: &RemoteMessage) -> Option<Box<RawValue>> {
    let payload: Box<RawValue> = serde_json::from_str(&message.payload).ok()?;
    let position = message.position.as_ref().map(|(o, e)| (*o, e.as_str()));
    let frame = delivery_frame(&message.publication(&payload, position), position);
    frame_json(&frame)
}

/// The JSON text of a stored (unmasked, uncompressed, single-frame) text frame.
fn frame_json(frame: &[u8]) -> Option<Box<RawValue>> {
    let Ok(Decoded::Complete(header, used)) = FrameHeader::decode(frame) else {
        return None;
    };
    let payload = frame.get(used..)?;
    if header.mask.is_some() || u64::try_from(payload.len()).ok()? != header.payload_len {
        return None;
    }
    let text = std::str::from_utf8(payload).ok()?;
    RawValue::from_string(text.to_owned()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::shared_frame;
    use crate::protocol::opcode::OpCode;

    #[test]
    fn a_stored_frame_reads_back_as_its_json() {
        let json = r#"{"type":"chat","offset":3}"#;
        let frame = shared_frame(OpCode::Text, json.as_bytes());
        assert_eq!(
            frame_json(&frame).map(|v| v.get().to_owned()),
            Some(json.into())
        );
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(70_000));
        let frame = shared_frame(OpCode::Text, long.as_bytes());
        assert_eq!(frame_json(&frame).map(|v| v.get().len()), Some(long.len()));
        assert!(
            frame_json(&frame[..10]).is_none(),
            "a cut frame is not JSON"
        );
    }

    #[test]
    fn counts_from_several_nodes_add_up() {
        let count = |room: &str, users, connections| RoomCount {
            room: room.into(),
            users,
            connections,
        };
        let merged = merge_room_counts([count("b", 1, 2), count("a", 2, 2), count("b", 3, 3)]);
        assert_eq!(merged, [count("a", 2, 2), count("b", 4, 5)]);
        let user = |user_id: &str, connections| UserCount {
            user_id: user_id.into(),
            connections,
        };
        let merged = merge_user_counts([user("zoe", 1), user("al", 2), user("zoe", 2)]);
        assert_eq!(merged, [user("al", 2), user("zoe", 3)]);
    }
}
