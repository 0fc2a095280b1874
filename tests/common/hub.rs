//! A JSON-speaking client for the hub's `/ws` endpoint, on top of the raw [`Client`].
//!
//! [`HubClient`] reads the `welcome` the server sends after the upgrade, sends requests as
//! masked text frames, and reads replies as `serde_json::Value`s. On the way it answers the
//! server's heartbeat pings (so a test that reads stays alive) and skips pongs. Every read
//! blocks for at most [`IO_TIMEOUT`] (the raw client's socket timeout), so a missing reply
//! fails the test instead of hanging it. [`TestServer::wait_for_hub`] polls `/stats` for the
//! hub's counts.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wsloop::protocol::OpCode;

use super::{Client, FIN, Frame, IO_TIMEOUT, OP_PONG, SETTLE, TestServer};

/// One `/ws` connection that speaks the hub's JSON protocol.
pub(crate) struct HubClient {
    raw: Client,
    /// The user id the server announced in `welcome`.
    pub(crate) user_id: String,
    /// The connection id the server announced in `welcome`.
    pub(crate) connection_id: String,
    /// Server pings answered so far.
    pub(crate) pings: usize,
}

impl HubClient {
    /// Opens `/ws?user_id=USER` and reads the `welcome`, which must name `user`.
    pub(crate) fn connect(server: &TestServer, user: &str) -> Self {
        let client = Self::open(server, &format!("/ws?user_id={user}"));
        assert_eq!(client.user_id, user, "welcome names the requested user");
        client
    }

    /// Opens `target` (a `/ws` URL) and reads the `welcome`.
    pub(crate) fn open(server: &TestServer, target: &str) -> Self {
        Self::from_raw(server.open(target))
    }

    /// Wraps a raw client that just completed the upgrade; reads and checks the `welcome`.
    pub(crate) fn from_raw(raw: Client) -> Self {
        let mut client = Self {
            raw,
            user_id: String::new(),
            connection_id: String::new(),
            pings: 0,
        };
        let welcome = client.expect("welcome");
        client.user_id = str_field(&welcome, "user_id").to_owned();
        client.connection_id = str_field(&welcome, "connection_id").to_owned();
        assert_timestamp(&welcome);
        client
    }

    /// The raw client underneath, for frames the JSON helpers do not cover.
    pub(crate) fn raw(&mut self) -> &mut Client {
        &mut self.raw
    }

    /// Sends `value` as one text frame.
    pub(crate) fn send_json(&mut self, value: &Value) {
        self.raw.send_text(&value.to_string());
    }

    /// Sends `text` as one text frame, as is (it need not be JSON).
    pub(crate) fn send_text(&mut self, text: &str) {
        self.raw.send_text(text);
    }

    /// The next frame that is not a ping or pong (pings are answered); `None` at EOF.
    ///
    /// Panics if nothing arrives within [`IO_TIMEOUT`].
    pub(crate) fn next_frame(&mut self) -> Option<Frame> {
        self.try_next_frame().unwrap_or_else(|e| {
            panic!(
                "{}: nothing from the server within {IO_TIMEOUT:?}: {e}",
                self.user_id
            )
        })
    }

    /// Like [`Self::next_frame`], but a read timeout is returned as an error.
    pub(crate) fn try_next_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            let Some(frame) = self.raw.try_read_frame()? else {
                return Ok(None);
            };
            match frame.opcode {
                OpCode::Ping => self.pong(&frame.payload),
                OpCode::Pong => {}
                _ => return Ok(Some(frame)),
            }
        }
    }

    /// Answers a server ping (§5.5.3: the pong echoes its payload).
    fn pong(&mut self, payload: &[u8]) {
        self.pings += 1;
        self.raw.send_frame(FIN | OP_PONG, payload);
    }

    /// The next data message as text; panics on a close, EOF or a non-text frame.
    pub(crate) fn next_text(&mut self) -> String {
        let user = self.user_id.clone();
        let frame = self
            .next_frame()
            .unwrap_or_else(|| panic!("{user}: server closed TCP where a message was expected"));
        if frame.opcode == OpCode::Close {
            let reason = String::from_utf8_lossy(frame.payload.get(2..).unwrap_or_default());
            panic!(
                "{user}: close {:?} {reason:?} where a message was expected",
                frame.close_code()
            );
        }
        assert_eq!(
            (frame.opcode, frame.fin),
            (OpCode::Text, true),
            "{user}: {frame:?}"
        );
        String::from_utf8(frame.payload).expect("text frames are UTF-8")
    }

    /// The next data message, decoded as JSON.
    pub(crate) fn next_json(&mut self) -> Value {
        let text = self.next_text();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("server sent bad JSON ({e}): {text}"))
    }

    /// The next message, which must have type `kind`.
    pub(crate) fn expect(&mut self, kind: &str) -> Value {
        let message = self.next_json();
        assert_eq!(
            message["type"], kind,
            "{}: unexpected message {message}",
            self.user_id
        );
        message
    }

    /// The next message whose type is not in `skip`.
    pub(crate) fn next_skipping(&mut self, skip: &[&str]) -> Value {
        loop {
            let message = self.next_json();
            if !skip.iter().any(|kind| message["type"] == *kind) {
                return message;
            }
        }
    }

    /// The next message, which must be an `error` with `code` and a non-empty message.
    pub(crate) fn expect_error(&mut self, code: &str) -> Value {
        let error = self.expect("error");
        assert_eq!(error["code"], code, "{error}");
        assert!(!str_field(&error, "message").is_empty(), "{error}");
        error
    }

    /// Joins `room` and returns the `joined` reply (presence events before it are skipped).
    pub(crate) fn join(&mut self, room: &str) -> Value {
        self.send_json(&json!({"type": "join", "room": room}));
        let joined = self.next_skipping(&["presence"]);
        assert_eq!(
            (&joined["type"], &joined["room"]),
            (&json!("joined"), &json!(room)),
            "{joined}"
        );
        joined
    }

    /// Leaves `room` and returns the `left` reply (presence events before it are skipped).
    pub(crate) fn leave(&mut self, room: &str) -> Value {
        self.send_json(&json!({"type": "leave", "room": room}));
        let left = self.next_skipping(&["presence"]);
        assert_eq!(
            (&left["type"], &left["room"]),
            (&json!("left"), &json!(room)),
            "{left}"
        );
        left
    }

    /// Sends a chat to everyone (`room` = `None`) or to a room, with an optional request id.
    pub(crate) fn chat(&mut self, room: Option<&str>, payload: Value, id: Option<Value>) {
        let mut request = json!({"type": "chat", "payload": payload});
        if let Some(room) = room {
            request["room"] = json!(room);
        }
        if let Some(id) = id {
            request["id"] = id;
        }
        self.send_json(&request);
    }

    /// Asserts that no data or close frame arrives for `quiet` (pings are answered).
    pub(crate) fn expect_no_message_within(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            self.set_read_timeout(left.max(Duration::from_millis(1)));
            let result = self.raw.try_read_frame();
            self.set_read_timeout(IO_TIMEOUT);
            match result {
                Ok(Some(frame)) if frame.opcode == OpCode::Ping => self.pong(&frame.payload),
                Ok(Some(frame)) if frame.opcode == OpCode::Pong => {}
                Ok(Some(frame)) => panic!(
                    "{}: expected silence, got {:?} {}",
                    self.user_id,
                    frame.opcode,
                    String::from_utf8_lossy(&frame.payload)
                ),
                Ok(None) => panic!(
                    "{}: server closed TCP while we expected silence",
                    self.user_id
                ),
                Err(e) if is_timeout(&e) => return,
                Err(e) => panic!("{}: read failed: {e}", self.user_id),
            }
        }
    }

    /// Expects a close frame with `code` next (pings answered, data is an error), replies to
    /// it (§5.5.1), expects the server to end TCP, and closes the socket. Returns the reason.
    pub(crate) fn expect_close(mut self, code: u16) -> String {
        let user = self.user_id.clone();
        let frame = self
            .next_frame()
            .unwrap_or_else(|| panic!("{user}: TCP closed without a close frame"));
        assert_eq!(
            frame.opcode,
            OpCode::Close,
            "{user}: expected a close, got {frame:?}"
        );
        let reason =
            String::from_utf8_lossy(frame.payload.get(2..).unwrap_or_default()).into_owned();
        assert_eq!(
            frame.close_code(),
            Some(code),
            "{user}: close reason {reason:?}"
        );
        self.reply_close_and_wait_eof(code);
        reason
    }

    /// Sends the closing reply for `code`, then reads until the server ends TCP.
    ///
    /// The server may already have shut its side; a failed write or a reset after the close
    /// frame still means the connection is gone, which is what the caller asserts.
    fn reply_close_and_wait_eof(&mut self, code: u16) {
        use std::io::Write as _;
        let reply = super::frame(FIN | super::OP_CLOSE, &super::close_body(code, b""));
        let _ = self.raw.writer().write_all(&reply);
        match self.raw.try_read_frame() {
            Ok(None) => {}
            Ok(Some(frame)) => panic!("{}: frame after the close: {frame:?}", self.user_id),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!(
                "{}: server did not end TCP after the close: {e}",
                self.user_id
            ),
        }
    }

    /// Runs a clean closing handshake: close 1000, skip messages still in flight, read the
    /// server's close 1000, then its EOF.
    pub(crate) fn close(mut self) {
        self.raw.send_close(1000, "bye");
        loop {
            let user = self.user_id.clone();
            let frame = self
                .next_frame()
                .unwrap_or_else(|| panic!("{user}: TCP closed before the close reply"));
            if frame.opcode == OpCode::Close {
                assert_eq!(frame.close_code(), Some(1000), "{user}: close reply");
                self.raw.expect_eof();
                return;
            }
        }
    }

    /// Drops the connection without a closing handshake.
    pub(crate) fn vanish(self) {
        self.raw.vanish();
    }

    /// Sets the socket's read timeout (shared by every handle on the socket).
    pub(crate) fn set_read_timeout(&self, timeout: Duration) {
        self.raw
            .writer()
            .set_read_timeout(Some(timeout))
            .expect("set the read timeout");
    }
}

/// Whether a read failed only because its timeout passed.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The string field `name` of `message`; panics naming the message if it is not a string.
pub(crate) fn str_field<'a>(message: &'a Value, name: &str) -> &'a str {
    message[name]
        .as_str()
        .unwrap_or_else(|| panic!("field `{name}` is not a string in {message}"))
}

/// Asserts `message.timestamp` is RFC 3339 UTC with milliseconds: `2026-01-31T23:59:59.999Z`.
pub(crate) fn assert_timestamp(message: &Value) {
    let ts = str_field(message, "timestamp").as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let ok = ts.len() == shape.len()
        && ts.iter().zip(shape).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            _ => c == s,
        });
    assert!(
        ok,
        "timestamp is not RFC 3339 UTC with milliseconds: {message}"
    );
}

impl TestServer {
    /// Polls `/stats` until the hub holds `connections` connections, `users` users and
    /// `rooms` rooms; returns that document. Waits up to twice [`SETTLE`].
    pub(crate) fn wait_for_hub(&self, connections: u64, users: u64, rooms: u64) -> Value {
        let deadline = Instant::now() + 2 * SETTLE;
        loop {
            let stats = self.stats();
            let counts = (&stats["hub_connections"], &stats["users"], &stats["rooms"]);
            if counts == (&json!(connections), &json!(users), &json!(rooms)) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "hub never reached {connections} connections, {users} users, {rooms} rooms: {stats}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Joins between two rounds of reading the presence they caused.
const JOIN_ROUND: usize = 50;

/// Opens `count` members of room `all`, each its own user (`u0`, `u1`, …); every member has
/// read the `join` presence of those after it, so all are caught up.
#[allow(dead_code)] // Not every test crate opens a crowd.
pub(crate) fn join_members(server: &TestServer, count: usize) -> Vec<HubClient> {
    let mut members: Vec<HubClient> = Vec::with_capacity(count);
    let mut pending = vec![0usize; count];
    for i in 0..count {
        let mut member = HubClient::connect(server, &format!("u{i}"));
        member.join("all");
        members.push(member);
        for owed in &mut pending[..i] {
            *owed += 1;
        }
        if (i + 1) % JOIN_ROUND == 0 || i + 1 == count {
            for (member, owed) in members.iter_mut().zip(&mut pending) {
                for _ in 0..std::mem::take(owed) {
                    assert_eq!(member.expect("presence")["action"], "join");
                }
            }
        }
    }
    members
}
