//! The message format between nodes on Redis pub/sub (and in Redis Streams for history).
//!
//! One line of space-separated fields, a newline, then the payload as raw JSON:
//!
//! ```text
//! WSL1 <node> <type> <all|room|user> <target|-> <sender> <timestamp> <at_ms> <offset|-> <epoch|->
//! {"any":"json"}
//! ```
//!
//! Every field is a token without spaces (room names, user ids and types are restricted to
//! printable ASCII without spaces), so the head needs no escaping; the payload is passed
//! through untouched. Room messages with history get their offset and epoch from Redis (a
//! Lua script appends them), so the head is written in two parts.

use std::fmt::Write as _;

use crate::hub::publish::OwnedTarget;
use crate::hub::remote::RemoteMessage;

/// The format's tag.
const MAGIC: &str = "WSL1";

/// A message travelling between nodes: the hub's message plus the node that accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    /// The node that accepted it.
    pub node: String,
    /// The message.
    pub message: RemoteMessage,
}

impl BusMessage {
    /// The head up to and excluding the position fields (what the Lua script completes).
    pub fn head_without_position(&self) -> String {
        let m = &self.message;
        let (tk, target) = match &m.target {
            OwnedTarget::All => ("all", "-"),
            OwnedTarget::Room(room) => ("room", room.as_str()),
            OwnedTarget::User(user) => ("user", user.as_str()),
        };
        format!(
            "{MAGIC} {} {} {tk} {target} {} {} {}",
            self.node, m.kind, m.sender, m.timestamp, m.at_ms
        )
    }

    /// The whole message, as published.
    pub fn encode(&self) -> Vec<u8> {
        let mut head = self.head_without_position();
        match &self.message.position {
            Some((offset, epoch)) => {
                let _ = write!(head, " {offset} {epoch}");
            }
            None => head.push_str(" - -"),
        }
        let mut bytes = head.into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(self.message.payload.as_bytes());
        bytes
    }

    /// Parses a message; `None` for anything malformed (it is logged and dropped).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let newline = bytes.iter().position(|&b| b == b'\n')?;
        let head = std::str::from_utf8(&bytes[..newline]).ok()?;
        let payload = std::str::from_utf8(&bytes[newline + 1..]).ok()?.to_owned();
        let fields: Vec<&str> = head.split(' ').collect();
        let [
            magic,
            node,
            kind,
            tk,
            target,
            sender,
            timestamp,
            at_ms,
            offset,
            epoch,
        ] = fields[..]
        else {
            return None;
        };
        if magic != MAGIC {
            return None;
        }
        let target = match (tk, target) {
            ("all", _) => OwnedTarget::All,
            ("room", room) => OwnedTarget::Room(room.to_owned()),
            ("user", user) => OwnedTarget::User(user.to_owned()),
            _ => return None,
        };
        let position = match (offset, epoch) {
            ("-", _) => None,
            (offset, epoch) => Some((offset.parse().ok()?, epoch.to_owned())),
        };
        let message = RemoteMessage {
            kind: kind.to_owned(),
            target,
            sender: sender.to_owned(),
            timestamp: timestamp.to_owned(),
            at_ms: at_ms.parse().ok()?,
            position,
            payload,
        };
        Some(Self {
            node: node.to_owned(),
            message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(target: OwnedTarget, position: Option<(u64, String)>) -> BusMessage {
        let message = RemoteMessage {
            kind: "chat".into(),
            target,
            sender: "alice".into(),
            timestamp: "2026-11-26T00:00:00.000Z".into(),
            at_ms: 1_795_000_000_000,
            position,
            payload: "{\"text\": \"multi\\nline\",\n \"n\": 1}".into(),
        };
        BusMessage {
            node: "n1".into(),
            message,
        }
    }

    #[test]
    fn round_trips() {
        for m in [
            message(OwnedTarget::All, None),
            message(
                OwnedTarget::Room("orders-42".into()),
                Some((7, "ab12".into())),
            ),
            message(OwnedTarget::User("bob".into()), None),
        ] {
            assert_eq!(BusMessage::parse(&m.encode()), Some(m));
        }
    }

    #[test]
    fn the_lua_completion_matches_encode() {
        let m = message(OwnedTarget::Room("r".into()), Some((3, "ep".into())));
        let completed = format!("{} 3 ep\n{}", m.head_without_position(), m.message.payload);
        assert_eq!(completed.into_bytes(), m.encode());
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            &b""[..],
            b"WSL1 x\n{}",
            b"XXXX n k all - s t 1 - -\n{}",
            b"WSL1 n k nope - s t 1 - -\n{}",
            b"WSL1 n k all - s t x - -\n{}",
        ] {
            assert_eq!(
                BusMessage::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
