//! `wsloop admin`: the operator API (`/api/info`, `/api/rooms`, presence, history,
//! `/api/disconnect`) from the command line, as aligned tables or the server's JSON.
//!
//! ```text
//! wsloop admin --key KEY info                     # the nodes and their status
//! wsloop admin --key KEY rooms                    # ROOM  USERS  CONNECTIONS
//! wsloop admin --key KEY presence lobby           # USER  CONNECTIONS
//! wsloop admin --key KEY history lobby --since 40 --limit 10
//! wsloop admin --key KEY disconnect alice --code 4001 --reason banned
//! wsloop admin --key KEY --json rooms             # the server's JSON, as it is
//! ```
//!
//! When a clustered server says some nodes did not answer (`missing`), the table still
//! prints and `missing nodes: …` goes to stderr. Exit status: [`EXIT_CODES`].

use serde_json::Value;

use super::Failure;
use super::http::{self, HttpError};

/// The exit statuses, for `--help`.
pub(super) const EXIT_CODES: &str = "Exit status:
  0  the server answered 200 (the table, or with --json its JSON, on stdout)
  1  the server refused: `error: message` and the HTTP status on stderr
     (401 wrong or missing key, 404 API off / unknown room / history off, 400 bad request)
  2  bad command line (flags, URL, no key)
  3  the server could not be reached, or its answer was not the API's

Example: WSLOOP_API_KEYS=s3cr3t wsloop admin rooms   # ROOM  USERS  CONNECTIONS";

/// Flags of `wsloop admin`.
#[derive(Debug, clap::Args)]
pub(super) struct AdminArgs {
    /// The server's base URL (its internal port when `server.internal_listen` is set).
    #[arg(long, default_value = "http://127.0.0.1:8080", global = true)]
    url: String,
    /// An API key (the server's api.keys); the first of WSLOOP_API_KEYS if not given.
    #[arg(long, env = "WSLOOP_API_KEYS", hide_env_values = true, global = true)]
    key: Option<String>,
    /// Print the server's JSON as it is instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// What to ask.
    #[command(subcommand)]
    action: Action,
}

/// The questions `wsloop admin` asks.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
enum Action {
    /// Every room with its user and connection counts (GET /api/rooms).
    Rooms,
    /// Who is in a room, with connections per user (GET /api/rooms/ROOM/presence).
    Presence {
        /// The room.
        room: String,
    },
    /// A room's recent messages (GET /api/rooms/ROOM/history); needs history on.
    History {
        /// The room.
        room: String,
        /// Only messages after this offset (default 0: from the oldest kept).
        #[arg(long)]
        since: Option<u64>,
        /// At most this many messages, 1 to 1000 (default 100).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
    /// Close every connection of a user, on every node (POST /api/disconnect).
    Disconnect {
        /// The user id.
        user: String,
        /// The close code the user's clients see, 4000 to 4999 (default 4000).
        #[arg(long, value_parser = clap::value_parser!(u16).range(4000..=4999))]
        code: Option<u16>,
        /// The close reason (at most 123 bytes).
        #[arg(long)]
        reason: Option<String>,
    },
    /// The server's version, uptime and nodes with their status (GET /api/info).
    Info,
}

/// Asks the server and prints its answer.
pub(super) fn run(args: &AdminArgs) -> Result<(), Failure> {
    let key = args
        .key
        .as_deref()
        .and_then(|keys| keys.split(',').map(str::trim).find(|k| !k.is_empty()))
        .ok_or_else(|| Failure::usage("no API key: pass --key or set WSLOOP_API_KEYS".into()))?;
    let (method, path, body) = request_of(&args.action);
    let answer =
        http::request(&args.url, method, &path, key, body.as_deref()).map_err(|e| match e {
            HttpError::BadUrl(message) => Failure::usage(message),
            HttpError::Network(message) => Failure::unreachable(message),
        })?;
    if answer.status != 200 {
        return Err(Failure::from(refusal(answer.status, &answer.body)));
    }
    let value: Value = serde_json::from_str(&answer.body).map_err(|e| {
        Failure::unreachable(format!("the answer is not JSON ({e}): {}", answer.body))
    })?;
    if args.json {
        println!("{}", answer.body);
    } else {
        print!("{}", render(&args.action, &value));
    }
    if let Some(missing) = missing_nodes(&value) {
        eprintln!("missing nodes: {missing}");
    }
    Ok(())
}

/// The method, path and body for `action`.
fn request_of(action: &Action) -> (&'static str, String, Option<String>) {
    match action {
        Action::Rooms => ("GET", "/api/rooms".into(), None),
        Action::Info => ("GET", "/api/info".into(), None),
        Action::Presence { room } => {
            let path = format!("/api/rooms/{}/presence", http::path_segment(room));
            ("GET", path, None)
        }
        Action::History { room, since, limit } => {
            let mut path = format!("/api/rooms/{}/history", http::path_segment(room));
            let mut query = Vec::new();
            if let Some(since) = since {
                query.push(format!("since={since}"));
            }
            if let Some(limit) = limit {
                query.push(format!("limit={limit}"));
            }
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            ("GET", path, None)
        }
        Action::Disconnect { user, code, reason } => {
            let mut body = serde_json::json!({ "user_id": user });
            if let Some(code) = code {
                body["code"] = (*code).into();
            }
            if let Some(reason) = reason {
                body["reason"] = reason.clone().into();
            }
            ("POST", "/api/disconnect".into(), Some(body.to_string()))
        }
    }
}

/// A refusal's text: the API's `error: message`, or the raw body if it is not the API's.
fn refusal(status: u16, body: &str) -> String {
    let value: Option<Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        value
            .as_ref()
            .and_then(|v| v[name].as_str().map(str::to_owned))
    };
    match (field("error"), field("message")) {
        (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
        (Some(code), None) => format!("{code} (HTTP {status})"),
        _ => format!("HTTP {status}: {body}"),
    }
}

/// The `missing` node ids joined by `, `, when there are any.
fn missing_nodes(value: &Value) -> Option<String> {
    let ids: Vec<String> = value["missing"].as_array()?.iter().map(cell).collect();
    (!ids.is_empty()).then(|| ids.join(", "))
}

/// The plain-text rendering of a 200 answer to `action`.
fn render(action: &Action, value: &Value) -> String {
    match action {
        Action::Rooms => table(
            &["ROOM", "USERS", "CONNECTIONS"],
            &rows(&value["rooms"], &["room", "users", "connections"]),
        ),
        Action::Presence { .. } => table(
            &["USER", "CONNECTIONS"],
            &rows(&value["users"], &["user_id", "connections"]),
        ),
        Action::History { .. } => render_history(value),
        Action::Disconnect { .. } => {
            format!(
                "disconnected {} connection(s)\n",
                cell(&value["disconnected"])
            )
        }
        Action::Info => render_info(value),
    }
}

/// `room R  epoch E  last N`, then one row a message.
fn render_history(value: &Value) -> String {
    let mut out = format!(
        "room {}  epoch {}  last {}\n",
        cell(&value["room"]),
        cell(&value["epoch"]),
        cell(&value["last"])
    );
    let messages = value["messages"].as_array().map_or(&[][..], Vec::as_slice);
    let rows: Vec<Vec<String>> = messages
        .iter()
        .map(|m| {
            let mut row = fields(m, &["offset", "timestamp", "sender_id", "type"]);
            row.push(m["payload"].to_string());
            row
        })
        .collect();
    out.push_str(&table(
        &["OFFSET", "TIMESTAMP", "SENDER", "TYPE", "PAYLOAD"],
        &rows,
    ));
    out
}

/// `version V  node N  uptime U`, then one row a node.
fn render_info(value: &Value) -> String {
    let mut out = format!(
        "version {}  node {}  uptime {}\n",
        cell(&value["version"]),
        cell(&value["node"]),
        uptime(&value["uptime_s"])
    );
    let nodes = value["nodes"].as_array().map_or(&[][..], Vec::as_slice);
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let mut row = fields(n, &["node", "version", "status", "connections"]);
            row.push(uptime(&n["uptime_s"]));
            row
        })
        .collect();
    out.push_str(&table(
        &["NODE", "VERSION", "STATUS", "CONNECTIONS", "UPTIME"],
        &rows,
    ));
    out
}

/// One row per element of the array `list`, the cells its `names` fields.
fn rows(list: &Value, names: &[&str]) -> Vec<Vec<String>> {
    let items = list.as_array().map_or(&[][..], Vec::as_slice);
    items.iter().map(|item| fields(item, names)).collect()
}

/// The cells of `item`'s `names` fields.
fn fields(item: &Value, names: &[&str]) -> Vec<String> {
    names.iter().map(|name| cell(&item[*name])).collect()
}

/// A JSON value as a table cell: strings bare, a missing field as `-`.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Seconds as `45s`, `3m05s`, `2h03m` or `4d02h`; `-` when not a number.
fn uptime(value: &Value) -> String {
    let Some(s) = value.as_u64() else {
        return "-".into();
    };
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Left-aligned columns two spaces apart, a header line first; no trailing spaces.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (text, width) in row.iter().zip(&widths) {
            let pad = width.saturating_sub(text.chars().count());
            line.push_str(text);
            line.push_str(&" ".repeat(pad + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rooms_table() {
        let answer = json!({"rooms": [
            {"room": "lobby", "users": 2, "connections": 3},
            {"room": "orders-1234", "users": 10, "connections": 12}
        ], "missing": []});
        assert_eq!(
            render(&Action::Rooms, &answer),
            "ROOM         USERS  CONNECTIONS\n\
             lobby        2      3\n\
             orders-1234  10     12\n"
        );
        assert_eq!(missing_nodes(&answer), None);
        let empty = json!({"rooms": [], "missing": ["n2", "n3"]});
        assert_eq!(render(&Action::Rooms, &empty), "ROOM  USERS  CONNECTIONS\n");
        assert_eq!(missing_nodes(&empty).as_deref(), Some("n2, n3"));
    }

    #[test]
    fn presence_table() {
        let answer = json!({"room": "lobby", "users": [
            {"user_id": "alice", "connections": 2}, {"user_id": "bo", "connections": 1}
        ], "missing": []});
        let action = Action::Presence {
            room: "lobby".into(),
        };
        assert_eq!(
            render(&action, &answer),
            "USER   CONNECTIONS\nalice  2\nbo     1\n"
        );
    }

    #[test]
    fn history_table() {
        let answer = json!({"room": "lobby", "epoch": "e1", "last": 8, "messages": [
            {"type": "chat", "room": "lobby", "sender_id": "alice",
             "timestamp": "2026-12-04T10:00:00.000Z", "offset": 7, "payload": {"text": "hi"}},
            {"type": "notification", "room": "lobby", "sender_id": "server",
             "timestamp": "2026-12-04T10:00:01.000Z", "offset": 8, "payload": "done"}
        ]});
        let action = Action::History {
            room: "lobby".into(),
            since: None,
            limit: None,
        };
        assert_eq!(
            render(&action, &answer),
            "room lobby  epoch e1  last 8\n\
             OFFSET  TIMESTAMP                 SENDER  TYPE          PAYLOAD\n\
             7       2026-12-04T10:00:00.000Z  alice   chat          {\"text\":\"hi\"}\n\
             8       2026-12-04T10:00:01.000Z  server  notification  \"done\"\n"
        );
    }

    #[test]
    fn info_table() {
        let answer = json!({"version": "0.1.0", "node": "n1", "uptime_s": 3725, "nodes": [
            {"node": "n1", "version": "0.1.0", "uptime_s": 3725, "connections": 3,
             "status": "ready"},
            {"node": "node-two", "version": "0.1.0", "uptime_s": 42, "connections": 0,
             "status": "draining"}
        ], "missing": []});
        assert_eq!(
            render(&Action::Info, &answer),
            "version 0.1.0  node n1  uptime 1h02m\n\
             NODE      VERSION  STATUS    CONNECTIONS  UPTIME\n\
             n1        0.1.0    ready     3            1h02m\n\
             node-two  0.1.0    draining  0            42s\n"
        );
    }

    #[test]
    fn disconnect_line_and_body() {
        let action = Action::Disconnect {
            user: "alice".into(),
            code: Some(4001),
            reason: Some("banned".into()),
        };
        let answer = json!({"disconnected": 2, "missing": []});
        assert_eq!(render(&action, &answer), "disconnected 2 connection(s)\n");
        let (method, path, body) = request_of(&action);
        assert_eq!((method, path.as_str()), ("POST", "/api/disconnect"));
        let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"user_id": "alice", "code": 4001, "reason": "banned"})
        );
    }

    #[test]
    fn paths() {
        let history = Action::History {
            room: "a b".into(),
            since: Some(5),
            limit: Some(10),
        };
        assert_eq!(
            request_of(&history).1,
            "/api/rooms/a%20b/history?since=5&limit=10"
        );
        let presence = Action::Presence { room: "r".into() };
        assert_eq!(request_of(&presence).1, "/api/rooms/r/presence");
    }

    #[test]
    fn refusals() {
        let body = r#"{"error":"unauthorized","message":"wrong API key"}"#;
        assert_eq!(refusal(401, body), "unauthorized: wrong API key (HTTP 401)");
        assert_eq!(refusal(404, "not found"), "HTTP 404: not found");
    }

    #[test]
    fn uptimes() {
        let cases = [(0, "0s"), (59, "59s"), (65, "1m05s"), (7260, "2h01m")];
        for (s, text) in cases {
            assert_eq!(uptime(&json!(s)), text);
        }
        assert_eq!(uptime(&json!(90_000)), "1d01h");
        assert_eq!(uptime(&Value::Null), "-");
    }
}
