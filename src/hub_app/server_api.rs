//! The server API's read and control endpoints, next to `POST /api/publish` and behind the
//! same key:
//!
//! ```text
//! GET  /api/info                                  version, uptime, every node's status
//! GET  /api/rooms                                 rooms with their users and connections
//! GET  /api/rooms/{room}/presence                 a room's users and their connections
//! GET  /api/rooms/{room}/history?since=&limit=    a room's messages, as clients got them
//! POST /api/disconnect                            close every connection of a user
//! ```
//!
//! Alone, the node answers from its own tables. Clustered, every answer but history covers
//! every node: the node asks the others over the bus and adds up their parts
//! ([`super::gather`]); history is read from the room's Redis stream.

use std::time::Instant;

use serde::Deserialize;

use super::api::{body_to_read, check_key, json_error};
use super::state::HubState;
use crate::cluster::query::{Ask, NodeInfo, Part};
use crate::hub::overview::{HistoryPage, merge_room_counts, merge_user_counts};
use crate::hub::{HubConfig, valid_room_name};
use crate::protocol::handshake::RequestHead;
use crate::protocol::http::Response;
use crate::server::ApiConfig;
use crate::server::Ctx;

/// The most messages one history request returns.
pub(crate) const MAX_HISTORY_LIMIT: usize = 1000;
/// Messages a history request returns without `limit`.
const DEFAULT_HISTORY_LIMIT: usize = 100;
/// The longest close reason (RFC 6455 §5.5: a control frame's payload is at most 125
/// bytes, two of which are the code).
const MAX_REASON_BYTES: usize = 123;
/// The close code `POST /api/disconnect` uses without one.
const DEFAULT_DISCONNECT_CODE: u16 = 4000;

/// A read the server API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiCall {
    /// Ask every node (`info`, `rooms`, `presence`, `disconnect`).
    Ask(Ask),
    /// A page of a room's history.
    History {
        /// The room.
        room: String,
        /// Messages after this offset.
        since: u64,
        /// At most this many.
        limit: usize,
    },
}

/// Checks the head of a request under `/api/` (other than `/api/publish`) before its
/// body is read: the key, then the method and path, then (for a disconnect) the length.
pub(crate) fn check_head(
    api: &ApiConfig,
    hub: &HubConfig,
    head: &RequestHead,
) -> Result<Parsed, Response> {
    check_key(api, head)?;
    let parsed = parse_call(head, hub)?;
    if parsed == Parsed::Disconnect {
        body_to_read(head, api.max_body_bytes)?;
    }
    Ok(parsed)
}

/// What a request line asks for, once its method and path are known good.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A read.
    Call(ApiCall),
    /// `POST /api/disconnect`: its body says whom.
    Disconnect,
}

/// Reads the method, path and query of an API request.
pub(crate) fn parse_call(head: &RequestHead, hub: &HubConfig) -> Result<Parsed, Response> {
    let path = head.path.as_str();
    if path == "/api/disconnect" {
        return expect_method(head, "POST").map(|()| Parsed::Disconnect);
    }
    let call = match path.strip_prefix("/api/") {
        Some("info") => ApiCall::Ask(Ask::Info),
        Some("rooms") => ApiCall::Ask(Ask::Rooms),
        Some(rest) => match rest.strip_prefix("rooms/").and_then(|r| r.rsplit_once('/')) {
            Some((room, what @ ("presence" | "history"))) => {
                if !valid_room_name(room, hub) {
                    let message = format!("`{room}` is not a valid room name");
                    return Err(json_error(400, "bad_request", &message));
                }
                if what == "presence" {
                    ApiCall::Ask(Ask::Presence {
                        room: room.to_owned(),
                    })
                } else {
                    history_call(head, room)?
                }
            }
            _ => return Err(not_found(path)),
        },
        None => return Err(not_found(path)),
    };
    expect_method(head, "GET")?;
    Ok(Parsed::Call(call))
}

/// 404 for a path under `/api/` that names no endpoint.
fn not_found(path: &str) -> Response {
    let message = format!(
        "no API endpoint `{path}`: see README (/api/info, /api/rooms, \
         /api/rooms/{{room}}/presence, /api/rooms/{{room}}/history, /api/disconnect, \
         /api/publish)"
    );
    json_error(404, "not_found", &message)
}

/// 405 unless the request uses `method`.
fn expect_method(head: &RequestHead, method: &str) -> Result<(), Response> {
    if head.method == method {
        return Ok(());
    }
    let message = format!("use {method}");
    Err(json_error(405, "method_not_allowed", &message).header("Allow", method))
}

/// `since` and `limit` of a history request.
fn history_call(head: &RequestHead, room: &str) -> Result<ApiCall, Response> {
    let number = |key: &str| -> Result<Option<u64>, Response> {
        match head.query_param(key) {
            None => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                let message = format!("`{key}` must be a whole number, not `{text}`");
                json_error(400, "bad_request", &message)
            }),
        }
    };
    let since = number("since")?.unwrap_or(0);
    let limit = number("limit")?.map_or(Ok(DEFAULT_HISTORY_LIMIT), |limit| {
        usize::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_HISTORY_LIMIT).contains(l))
            .ok_or_else(|| {
                let message = format!("`limit` must be between 1 and {MAX_HISTORY_LIMIT}");
                json_error(400, "bad_request", &message)
            })
    })?;
    Ok(ApiCall::History {
        room: room.to_owned(),
        since,
        limit,
    })
}

/// The body of `POST /api/disconnect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisconnectBody {
    user_id: String,
    code: Option<u16>,
    reason: Option<String>,
}

/// Reads a disconnect request's body.
pub(crate) fn decode_disconnect(body: &[u8]) -> Result<Ask, Response> {
    let bad = |message: &str| json_error(400, "bad_request", message);
    let request: DisconnectBody = serde_json::from_slice(body).map_err(|e| {
        bad(&format!(
            "the body must be {{\"user_id\": …, \"code\": 4000-4999, \"reason\": …}}: {e}"
        ))
    })?;
    if !crate::auth::user_id::valid_user_id(&request.user_id) {
        return Err(bad("`user_id` is not a valid user id"));
    }
    let code = request.code.unwrap_or(DEFAULT_DISCONNECT_CODE);
    if !(4000..=4999).contains(&code) {
        return Err(bad("`code` must be an application close code, 4000-4999"));
    }
    let reason = request.reason.unwrap_or_default();
    if reason.len() > MAX_REASON_BYTES {
        let message = format!("`reason` is longer than {MAX_REASON_BYTES} bytes");
        return Err(bad(&message));
    }
    Ok(Ask::Disconnect {
        user_id: request.user_id,
        code,
        reason,
    })
}

/// The answer to `ask` from the nodes' parts; `missing` lists the nodes that did not
/// answer.
pub(crate) fn gathered(
    ask: &Ask,
    me: &NodeInfo,
    parts: Vec<Part>,
    missing: Vec<String>,
) -> Response {
    let body = match ask {
        Ask::Info => {
            let mut nodes: Vec<NodeInfo> = parts
                .into_iter()
                .filter_map(|part| match part {
                    Part::Info { info } => Some(info),
                    _ => None,
                })
                .collect();
            nodes.sort_unstable_by(|a, b| a.node.cmp(&b.node));
            serde_json::json!({
                "version": me.version,
                "node": me.node,
                "uptime_s": me.uptime_s,
                "nodes": nodes,
                "missing": missing,
            })
        }
        Ask::Rooms => {
            let rooms = merge_room_counts(parts.into_iter().flat_map(|part| match part {
                Part::Rooms { rooms } => rooms,
                _ => Vec::new(),
            }));
            serde_json::json!({ "rooms": rooms, "missing": missing })
        }
        Ask::Presence { room } => {
            let users = merge_user_counts(parts.into_iter().flat_map(|part| match part {
                Part::Presence { users } => users,
                _ => Vec::new(),
            }));
            if users.is_empty() {
                let message = format!("nobody is in room `{room}`");
                return json_error(404, "unknown_room", &message);
            }
            serde_json::json!({ "room": room, "users": users, "missing": missing })
        }
        Ask::Disconnect { .. } => {
            let closed: usize = parts
                .iter()
                .map(|part| match part {
                    Part::Disconnected { connections } => *connections,
                    _ => 0,
                })
                .sum();
            serde_json::json!({ "disconnected": closed, "missing": missing })
        }
    };
    Response::with_body(200, "application/json", body.to_string().into_bytes())
}

/// The answer to a history request.
pub(crate) fn history_answer(room: &str, page: Option<HistoryPage>) -> Response {
    match page {
        Some(page) => {
            let body = serde_json::to_vec(&page).unwrap_or_default();
            Response::with_body(200, "application/json", body)
        }
        None => {
            let message = format!("room `{room}` has no history");
            json_error(404, "unknown_room", &message)
        }
    }
}

impl HubState {
    /// This node's figures for `/api/info`; its status is the engine's readiness, or the
    /// hub's own health when that is worse (the hub is being called: the engine cannot
    /// ask it).
    pub(crate) fn node_info(&self, ctx: &Ctx<'_>, now: Instant) -> NodeInfo {
        NodeInfo {
            node: self.node.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_s: now.saturating_duration_since(ctx.started()).as_secs(),
            connections: ctx.open_connections(),
            status: ctx.readiness(self.health()).status().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::Decoded;
    use crate::protocol::handshake::{HeadLimits, HeadParser};

    fn head(method: &str, target: &str) -> RequestHead {
        let text = format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut parser = HeadParser::new(HeadLimits::default());
        match parser.parse(text.as_bytes()) {
            Ok(Decoded::Complete(head, _)) => head,
            other => panic!("{other:?}"),
        }
    }

    fn parse(method: &str, target: &str) -> Result<Parsed, u16> {
        let config = HubConfig::default();
        parse_call(&head(method, target), &config).map_err(|r| r.status)
    }

    #[test]
    fn each_endpoint_and_its_refusals() {
        let ask = |ask| Ok(Parsed::Call(ApiCall::Ask(ask)));
        assert_eq!(parse("GET", "/api/info"), ask(Ask::Info));
        assert_eq!(parse("GET", "/api/rooms"), ask(Ask::Rooms));
        let presence = Ask::Presence {
            room: "lobby".into(),
        };
        assert_eq!(parse("GET", "/api/rooms/lobby/presence"), ask(presence));
        assert_eq!(
            parse("GET", "/api/rooms/lobby/history?since=4&limit=2"),
            Ok(Parsed::Call(ApiCall::History {
                room: "lobby".into(),
                since: 4,
                limit: 2
            }))
        );
        assert_eq!(parse("POST", "/api/disconnect"), Ok(Parsed::Disconnect));

        assert_eq!(parse("POST", "/api/rooms"), Err(405));
        assert_eq!(parse("GET", "/api/disconnect"), Err(405));
        assert_eq!(parse("GET", "/api/nothing"), Err(404));
        assert_eq!(parse("GET", "/api/rooms/lobby/members"), Err(404));
        assert_eq!(parse("GET", "/api/rooms/a%20b/presence"), Err(400));
        assert_eq!(parse("GET", "/api/rooms//presence"), Err(400));
        for query in ["since=-1", "since=x", "limit=0", "limit=1001", "limit=1e3"] {
            let target = format!("/api/rooms/lobby/history?{query}");
            assert_eq!(parse("GET", &target), Err(400), "{query}");
        }
    }

    #[test]
    fn disconnect_bodies() {
        let ok = decode_disconnect(br#"{"user_id":"alice"}"#);
        assert_eq!(
            ok.ok(),
            Some(Ask::Disconnect {
                user_id: "alice".into(),
                code: 4000,
                reason: String::new()
            })
        );
        let long = format!(r#"{{"user_id":"a","reason":"{}"}}"#, "x".repeat(124));
        for body in [
            "",
            "[]",
            r#"{"user":"alice"}"#,
            r#"{"user_id":""}"#,
            r#"{"user_id":"a b"}"#,
            r#"{"user_id":"a","code":1000}"#,
            r#"{"user_id":"a","code":5000}"#,
            r#"{"user_id":"a","code":"4000"}"#,
            long.as_str(),
        ] {
            let refusal = decode_disconnect(body.as_bytes()).err();
            assert_eq!(refusal.map(|r| r.status), Some(400), "{body}");
        }
    }

    #[test]
    fn parts_add_up_and_an_empty_room_is_unknown() {
        let me = NodeInfo {
            node: "a".into(),
            version: "1".into(),
            uptime_s: 1,
            connections: 0,
            status: "ready".into(),
        };
        let presence = Ask::Presence { room: "r".into() };
        let empty = Part::Presence { users: Vec::new() };
        assert_eq!(
            gathered(&presence, &me, vec![empty], Vec::new()).status,
            404
        );
        let closed = |connections| Part::Disconnected { connections };
        let ask = Ask::Disconnect {
            user_id: "u".into(),
            code: 4000,
            reason: String::new(),
        };
        let response = gathered(&ask, &me, vec![closed(2), closed(1)], vec!["c".into()]);
        let body: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"disconnected": 3, "missing": ["c"]})
        );
    }
}
