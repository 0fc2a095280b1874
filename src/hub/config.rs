//! The hub's limits, each with a documented default.

use super::history::HistoryConfig;
use super::rules::{Access, RoomRules};
use crate::ratelimit::Rate;

/// Limits on rooms, members and messages for the `/ws` endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HubConfig {
    /// Rooms one connection may be in at once. Default: 32.
    pub max_rooms_per_connection: usize,
    /// Connections one room may hold. Default: 100,000.
    pub max_members_per_room: usize,
    /// Longest room name in bytes. Default: 64. Names use `A-Z a-z 0-9 _ - . : @`.
    pub max_room_name_len: usize,
    /// Largest request the hub parses, in bytes; larger ones get `message_too_large` (the
    /// connection stays open). Default: 64 KiB.
    pub max_message_bytes: usize,
    /// At most this many user ids are listed in a `joined` reply (any of them in a larger
    /// room, so a join costs the same in a room of any size; `members` stays exact).
    /// Default: 100.
    pub max_listed_users: usize,
    /// Per-user message rate limit, over all of the user's connections: a burst of
    /// `capacity`, then `refill_per_sec`. Over it a message is dropped and answered with
    /// `rate_limited`. Default: 10, 1/s. `enabled = false` turns it off.
    pub rate_limit: Rate,
    /// Whether the message rate limit applies. Default: true.
    pub rate_limit_enabled: bool,
    /// Rate-limited messages in a row after which the sending connection is closed with
    /// 1008 "rate limit exceeded". Default: 20.
    pub abuse_strikes: u32,
    /// Who may join and publish in which room. Default: authenticated users everywhere.
    pub rules: RoomRules,
    /// Who may send a global broadcast (`chat` without a room). Default: authenticated.
    pub broadcast: Access,
    /// Who may send private messages to whom. Default: anyone to anyone.
    pub private_messages: PrivatePolicy,
    /// Room history for recovery after reconnects.
    pub history: HistoryConfig,
    /// Bytes of room frames held back for one member while its recovery fetch is in flight;
    /// over it the member is closed 1008 "slow consumer", like a member over its outbound
    /// cap. The server sets it to `max_outbound_bytes`. Default: 1 MiB.
    pub max_held_bytes: usize,
}

/// Who may send private messages to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivatePolicy {
    /// Any connected user to any connected user.
    #[default]
    Anyone,
    /// Only to users the sender shares at least one room with.
    SharedRoom,
    /// No private messages.
    Nobody,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_rooms_per_connection: 32,
            max_members_per_room: 100_000,
            max_room_name_len: 64,
            max_message_bytes: 64 * 1024,
            max_listed_users: 100,
            rate_limit: Rate {
                capacity: 10.0,
                refill_per_sec: 1.0,
            },
            rate_limit_enabled: true,
            abuse_strikes: 20,
            rules: RoomRules::default(),
            broadcast: Access::Authenticated,
            private_messages: PrivatePolicy::Anyone,
            history: HistoryConfig::default(),
            max_held_bytes: 1 << 20,
        }
    }
}

/// Whether `name` is a valid room name under `config`.
pub fn valid_room_name(name: &str, config: &HubConfig) -> bool {
    !name.is_empty()
        && name.len() <= config.max_room_name_len
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@".contains(&b))
}

pub use crate::auth::user_id::{MAX_USER_ID_LEN, valid_user_id};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        let c = HubConfig::default();
        for ok in ["lobby", "user:42", "a.b-c_d@e", &"x".repeat(64)] {
            assert!(valid_room_name(ok, &c), "{ok}");
        }
        for bad in ["", "has space", "ümlaut", "semi;colon", &"x".repeat(65)] {
            assert!(!valid_room_name(bad, &c), "{bad}");
        }
    }
}
