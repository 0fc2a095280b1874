//! Questions one node asks every node over the bus for the server API, and their answers.
//!
//! `GET /api/rooms` (and `/api/info`, a room's presence, `POST /api/disconnect`) must cover
//! every node, and only each node knows its own connections exactly. The node that got
//! the request publishes a question on the bus channel and answers its own part at once;
//! every other live node answers with its part, and the asker adds them up (or, past a
//! deadline, answers with the nodes that did not answer listed as `missing`).
//!
//! One line each, a tag and a JSON object:
//!
//! ```text
//! WSQ1 {"asker":"node-a","qid":7,"ask":"presence","room":"lobby"}
//! WSR1 {"asker":"node-a","qid":7,"node":"node-b","part":"presence","users":[…]}
//! ```

use serde::{Deserialize, Serialize};

use crate::hub::overview::{RoomCount, UserCount};

/// The tag of a question.
const QUESTION: &str = "WSQ1 ";
/// The tag of an answer.
const ANSWER: &str = "WSR1 ";

/// What the asker wants from every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum Ask {
    /// The node's id, version, uptime, connections and status.
    Info,
    /// The rooms with members on the node.
    Rooms,
    /// The users in a room on the node.
    Presence {
        /// The room.
        room: String,
    },
    /// Close every connection of a user on the node.
    Disconnect {
        /// The user.
        user_id: String,
        /// The close code (4000–4999).
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// One node's figures for `/api/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node id.
    pub node: String,
    /// The wsloop version it runs.
    pub version: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// Open WebSocket connections.
    pub connections: usize,
    /// `ready`, `degraded`, `not_ready` or `draining` (as `/readyz` says).
    pub status: String,
}

/// One node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Part {
    /// For [`Ask::Info`] (a field of its own: the node's id would clash with the
    /// answer's `node`).
    Info {
        /// The node's figures.
        info: NodeInfo,
    },
    /// For [`Ask::Rooms`].
    Rooms {
        /// Its rooms.
        rooms: Vec<RoomCount>,
    },
    /// For [`Ask::Presence`].
    Presence {
        /// The room's users on the node.
        users: Vec<UserCount>,
    },
    /// For [`Ask::Disconnect`].
    Disconnected {
        /// Connections it closed.
        connections: usize,
    },
}

/// A question on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// The node that asks (and gathers the answers).
    pub asker: String,
    /// The asker's number for the question.
    pub qid: u64,
    /// What it asks.
    #[serde(flatten)]
    pub ask: Ask,
}

/// An answer on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The node that asked.
    pub asker: String,
    /// The question's number.
    pub qid: u64,
    /// The node that answers.
    pub node: String,
    /// Its part.
    #[serde(flatten)]
    pub part: Part,
}

/// A question or an answer read from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Another node asks.
    Question(Question),
    /// A node answers.
    Reply(Reply),
}

/// Whether a bus message is a question or an answer (rather than a message or a presence
/// note).
pub fn is_query(bytes: &[u8]) -> bool {
    bytes.starts_with(QUESTION.as_bytes()) || bytes.starts_with(ANSWER.as_bytes())
}

/// The line for a question.
pub fn encode_question(question: &Question) -> String {
    let json = serde_json::to_string(question).unwrap_or_default();
    format!("{QUESTION}{json}")
}

/// The line for an answer.
pub fn encode_reply(reply: &Reply) -> String {
    let json = serde_json::to_string(reply).unwrap_or_default();
    format!("{ANSWER}{json}")
}

/// Reads a question or answer line; `None` for anything malformed.
pub fn parse(bytes: &[u8]) -> Option<Line> {
    if let Some(json) = bytes.strip_prefix(QUESTION.as_bytes()) {
        return serde_json::from_slice(json).ok().map(Line::Question);
    }
    let json = bytes.strip_prefix(ANSWER.as_bytes())?;
    serde_json::from_slice(json).ok().map(Line::Reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_answers_round_trip() {
        let question = Question {
            asker: "a-1".into(),
            qid: 7,
            ask: Ask::Disconnect {
                user_id: "alice".into(),
                code: 4000,
                reason: "bye now".into(),
            },
        };
        let line = encode_question(&question);
        assert!(
            line.starts_with(r#"WSQ1 {"asker":"a-1","qid":7,"ask":"disconnect""#),
            "{line}"
        );
        assert!(is_query(line.as_bytes()));
        assert_eq!(parse(line.as_bytes()), Some(Line::Question(question)));

        let reply = Reply {
            asker: "a-1".into(),
            qid: 7,
            node: "b-2".into(),
            part: Part::Presence {
                users: vec![UserCount {
                    user_id: "bob".into(),
                    connections: 2,
                }],
            },
        };
        let line = encode_reply(&reply);
        assert_eq!(parse(line.as_bytes()), Some(Line::Reply(reply)));
        let info = Part::Info {
            info: NodeInfo {
                node: "b".into(),
                version: "1".into(),
                uptime_s: 3,
                connections: 4,
                status: "ready".into(),
            },
        };
        let reply = Reply {
            asker: "a".into(),
            qid: 1,
            node: "b".into(),
            part: info,
        };
        assert_eq!(
            parse(encode_reply(&reply).as_bytes()),
            Some(Line::Reply(reply))
        );
    }

    #[test]
    fn anything_else_is_not_a_query() {
        for line in [
            &b"WSP1 node join r u"[..],
            b"WSQ1 not json",
            b"WSR1 {\"asker\":\"a\"}",
            b"WSQ1 {\"asker\":\"a\",\"qid\":1,\"ask\":\"reboot\"}",
        ] {
            assert_eq!(parse(line), None, "{}", String::from_utf8_lossy(line));
        }
        assert!(!is_query(b"WSP1 node gone"));
    }
}
