//! Presence notes between nodes, on the same bus channel as messages.
//!
//! One line, no payload, fields separated by single spaces:
//!
//! ```text
//! WSP1 <node> join <room> <user>     user arrived in room on node (first connection there)
//! WSP1 <node> leave <room> <user>    user left room on node (last connection there)
//! WSP1 <node> sync <room>            node rewrote its users of room in Redis: read it again
//! WSP1 <node> gone                   node's liveness key expired: drop all of its users
//! ```
//!
//! Node ids, room names and user ids are tokens without spaces, so nothing needs escaping.
//! The Lua scripts of the private `presence_store` module publish these lines (the `gone`
//! line is built inside the heartbeat script from `gone_template`). Anything else is
//! malformed: [`parse`] answers `None` and the loop logs and drops it.

use crate::hub::presence::PresenceNote;

/// The format's tag; a bus message starting with it is a presence note.
const MAGIC: &str = "WSP1";

/// The `gone` line split around its node id, for the heartbeat script to put a dead
/// node's id between (so the script and [`encode`] cannot disagree).
pub(super) fn gone_template() -> (String, String) {
    let line = encode(&PresenceNote::Gone { node: "\0".into() });
    match line.split_once('\0') {
        Some((head, tail)) => (head.to_owned(), tail.to_owned()),
        None => (line, String::new()),
    }
}

/// The start of `node`'s `sync` lines, to which the prune script appends a room name.
pub(super) fn sync_head(node: &str) -> String {
    encode(&PresenceNote::Sync {
        node: node.to_owned(),
        room: String::new(),
    })
}

/// Whether a bus message is a presence note (rather than a [`super::bus::BusMessage`]).
pub fn is_note(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC.as_bytes()) && bytes.get(MAGIC.len()) == Some(&b' ')
}

/// The line for `note`.
pub fn encode(note: &PresenceNote) -> String {
    match note {
        PresenceNote::Here {
            node,
            room,
            user,
            present,
        } => {
            let action = if *present { "join" } else { "leave" };
            format!("{MAGIC} {node} {action} {room} {user}")
        }
        PresenceNote::Sync { node, room } => format!("{MAGIC} {node} sync {room}"),
        PresenceNote::Gone { node } => format!("{MAGIC} {node} gone"),
    }
}

/// Parses a note; `None` for anything malformed.
pub fn parse(bytes: &[u8]) -> Option<PresenceNote> {
    let line = std::str::from_utf8(bytes).ok()?;
    let fields: Vec<&str> = line.split(' ').collect();
    if fields
        .iter()
        .any(|f| f.is_empty() || f.contains(['\n', '\r']))
    {
        return None;
    }
    let owned = |s: &str| s.to_owned();
    match fields[..] {
        [MAGIC, node, "gone"] => Some(PresenceNote::Gone { node: owned(node) }),
        [MAGIC, node, "sync", room] => Some(PresenceNote::Sync {
            node: owned(node),
            room: owned(room),
        }),
        [MAGIC, node, action @ ("join" | "leave"), room, user] => Some(PresenceNote::Here {
            node: owned(node),
            room: owned(room),
            user: owned(user),
            present: action == "join",
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here(present: bool) -> PresenceNote {
        PresenceNote::Here {
            node: "n1".into(),
            room: "room:42".into(),
            user: "bob".into(),
            present,
        }
    }

    #[test]
    fn round_trips() {
        for note in [
            here(true),
            here(false),
            PresenceNote::Sync {
                node: "n1".into(),
                room: "lobby".into(),
            },
            PresenceNote::Gone { node: "n2".into() },
        ] {
            let line = encode(&note);
            assert!(is_note(line.as_bytes()), "{line}");
            assert_eq!(parse(line.as_bytes()), Some(note), "{line}");
        }
    }

    #[test]
    fn the_heartbeat_script_builds_gone_lines_that_parse() {
        let (head, tail) = gone_template();
        let line = format!("{head}n2{tail}");
        assert_eq!(
            parse(line.as_bytes()),
            Some(PresenceNote::Gone { node: "n2".into() })
        );
    }

    #[test]
    fn the_prune_script_builds_sync_lines_that_parse() {
        let line = format!("{}lobby", sync_head("n1"));
        assert_eq!(
            parse(line.as_bytes()),
            Some(PresenceNote::Sync {
                node: "n1".into(),
                room: "lobby".into()
            })
        );
    }

    #[test]
    fn messages_are_not_notes() {
        assert!(!is_note(b"WSL1 n chat all - s t 1 - -\n{}"));
        assert!(!is_note(b"WSP1"));
        assert!(!is_note(b"WSP10 n gone"));
    }

    #[test]
    fn malformed_notes_are_refused() {
        for bad in [
            &b""[..],
            b"WSP1",
            b"WSP1 n",
            b"WSP1 n gone extra",
            b"WSP1 n join room",
            b"WSP1 n join room user extra",
            b"WSP1 n arrive room user",
            b"WSP1  join room user",
            b"WSP1 n sync",
            b"WSP1 n join room us\ner",
            b"WSP2 n gone",
            b"WSP1 n join room \xff",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
