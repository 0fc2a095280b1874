//! The test's side of the wire: WebSocket clients (the crate's blocking client) that read
//! hub messages as JSON, and one-shot HTTP requests.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wsloop::client::{Client, ClientError, ClientOptions, Message};

use super::PATIENCE;

/// One WebSocket connection to `/ws`, as one user.
pub(crate) struct Peer {
    client: Client,
    /// The user it connected as.
    pub(crate) user: String,
}

impl Peer {
    /// Connects to `url` (a `…/ws?user_id=USER` URL) and reads the `welcome`.
    pub(crate) fn connect(url: &str, user: &str) -> Self {
        Self::try_connect(url, user, &[]).unwrap_or_else(|e| panic!("{user}: connect {url}: {e}"))
    }

    /// Connects with extra handshake headers; the error if the handshake fails.
    pub(crate) fn try_connect(
        url: &str,
        user: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, ClientError> {
        let options = ClientOptions {
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..ClientOptions::default()
        };
        let client = Client::connect(url, &options)?;
        client.set_read_timeout(Some(PATIENCE))?;
        let mut peer = Self {
            client,
            user: user.to_owned(),
        };
        let welcome = peer.next_json()?;
        assert_eq!(welcome["type"], "welcome", "{user}: {welcome}");
        assert_eq!(welcome["user_id"], user, "{welcome}");
        Ok(peer)
    }

    /// Sends one JSON request.
    pub(crate) fn send(&mut self, request: &Value) {
        let text = request.to_string();
        self.client
            .send_text(&text)
            .unwrap_or_else(|e| panic!("{}: send {text}: {e}", self.user));
    }

    /// The next text message as JSON, or why there is none (closed, timed out).
    pub(crate) fn next_json(&mut self) -> Result<Value, ClientError> {
        loop {
            match self.client.recv()? {
                Message::Text(text) => return Ok(serde_json::from_str(&text).expect("JSON")),
                Message::Binary(_) => panic!("{}: a binary message on /ws", self.user),
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
    }

    /// The next message, failing the test if none arrives within [`PATIENCE`].
    pub(crate) fn next(&mut self) -> Value {
        self.next_json()
            .unwrap_or_else(|e| panic!("{}: no message: {e}", self.user))
    }

    /// The next message of type `kind`, skipping `presence` (which is about other users).
    pub(crate) fn expect(&mut self, kind: &str) -> Value {
        loop {
            let message = self.next();
            if message["type"] == kind {
                return message;
            }
            assert_eq!(
                message["type"], "presence",
                "{}: expected {kind}, got {message}",
                self.user
            );
        }
    }

    /// Joins `room` (with `since`, if given) and returns the `joined` ack.
    pub(crate) fn join(&mut self, room: &str, since: Option<&Value>) -> Value {
        let mut request = json!({"type": "join", "room": room});
        if let Some(since) = since {
            request["since"] = since.clone();
        }
        self.send(&request);
        let joined = self.expect("joined");
        assert_eq!(joined["room"], room, "{joined}");
        joined
    }

    /// The next message other than `presence`, if one arrives within `wait`.
    pub(crate) fn poll(&mut self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.client
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("set the read timeout");
            let got = self.next_json();
            self.client
                .set_read_timeout(Some(PATIENCE))
                .expect("set the read timeout");
            match got {
                Ok(message) if message["type"] == "presence" => continue,
                Ok(message) => return Some(message),
                Err(ClientError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(e) => panic!("{}: {e}", self.user),
            }
        }
    }

    /// The next message of any type (`presence` included), if one arrives within `wait`.
    pub(crate) fn next_within(&mut self, wait: Duration) -> Option<Value> {
        self.client
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .expect("set the read timeout");
        let got = self.next_json();
        self.client
            .set_read_timeout(Some(PATIENCE))
            .expect("set the read timeout");
        match got {
            Ok(message) => Some(message),
            Err(ClientError::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("{}: {e}", self.user),
        }
    }

    /// Like [`Peer::poll`], but a closed or broken connection is an `Err`, not a panic.
    pub(crate) fn try_poll(&mut self, wait: Duration) -> Result<Option<Value>, ClientError> {
        self.client
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(ClientError::Io)?;
        loop {
            match self.next_json() {
                Ok(message) if message["type"] == "presence" => continue,
                Ok(message) => return Ok(Some(message)),
                Err(ClientError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends one JSON request; the error if the connection is gone.
    pub(crate) fn try_send(&mut self, request: &Value) -> Result<(), ClientError> {
        self.client.send_text(&request.to_string())
    }

    /// Joins `room` (with `since`, if given); the `joined` answer, or the error if the
    /// connection breaks first. Anything else that arrives meanwhile is skipped.
    pub(crate) fn try_join(
        &mut self,
        room: &str,
        since: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut request = json!({"type": "join", "room": room});
        if let Some(since) = since {
            request["since"] = since.clone();
        }
        self.try_send(&request)?;
        loop {
            let message = self.next_json()?;
            if message["type"] == "joined" && message["room"] == room {
                return Ok(message);
            }
        }
    }

    /// Closes the connection cleanly.
    pub(crate) fn close(mut self) {
        let _ = self.client.close(1000, "done");
    }
}

/// One HTTP/1.1 request on a fresh connection to `127.0.0.1:port`; returns (status, body).
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    try_http(port, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no status line in {head:?}")))?;
    Ok((status, body.to_owned()))
}

/// `POST /api/publish` on `port` with the tests' API key; returns (status, JSON answer).
pub(crate) fn publish(port: u16, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {}", super::API_KEY);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, answer) = http(port, "POST", "/api/publish", &headers, &body.to_string());
    let answer = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
    (status, answer)
}
