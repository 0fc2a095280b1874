//! HTTP/1.1 for the tests: requests built header by header (so any part can be broken),
//! responses parsed with `httparse`, and the check of a `101 Switching Protocols` answer.

use wsloop::protocol::handshake::accept_key;

use super::IO_TIMEOUT;
use super::client::Client;

/// The nonce of RFC 6455 §1.3 and §4.2.2.
pub(crate) const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Its `Sec-WebSocket-Accept`, as printed in §1.3.
pub(crate) const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// An HTTP/1.1 request, built header by header so tests can break any part of it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// A plain `GET` with a `Host` header.
    pub(crate) fn get(target: &str) -> Self {
        Self {
            method: "GET".into(),
            target: target.into(),
            version: "HTTP/1.1".into(),
            headers: vec![("Host".into(), "127.0.0.1".into())],
        }
    }

    /// A valid opening handshake (§4.1) with the RFC's sample key.
    pub(crate) fn upgrade(target: &str) -> Self {
        Self::get(target)
            .set("Upgrade", "websocket")
            .set("Connection", "Upgrade")
            .set("Sec-WebSocket-Key", SAMPLE_KEY)
            .set("Sec-WebSocket-Version", "13")
    }

    /// The same request for another target.
    pub(crate) fn to(mut self, target: &str) -> Self {
        self.target = target.into();
        self
    }

    /// Replaces the method.
    pub(crate) fn method(mut self, method: &str) -> Self {
        self.method = method.into();
        self
    }

    /// Replaces the protocol version on the request line.
    pub(crate) fn version(mut self, version: &str) -> Self {
        self.version = version.into();
        self
    }

    /// Sets a header, replacing any of the same name (case-insensitive).
    pub(crate) fn set(self, name: &str, value: &str) -> Self {
        self.remove(name).add(name, value)
    }

    /// Appends a header, even if one of the same name exists.
    pub(crate) fn add(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Removes every header of this name.
    pub(crate) fn remove(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// The value of the first header of this name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request head on the wire.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version);
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct HttpResponse {
    /// The status code.
    pub(crate) status: u16,
    /// Headers in order, names as sent.
    pub(crate) headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The value of the first header of this name (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Client {
    /// Reads an HTTP response head and its `Content-Length` body; leaves what follows.
    pub(crate) fn read_response(&mut self) -> HttpResponse {
        loop {
            if let Some(response) = self.parse_response() {
                return response;
            }
            let more = self.fill().unwrap_or_else(|e| {
                panic!(
                    "no complete HTTP response within {IO_TIMEOUT:?}: {e}; got {:?}",
                    String::from_utf8_lossy(self.pending())
                )
            });
            assert!(
                more,
                "server closed TCP before a complete HTTP response; got {:?}",
                String::from_utf8_lossy(self.pending())
            );
        }
    }

    /// A complete response at the front of the buffer, consumed, if there is one.
    fn parse_response(&mut self) -> Option<HttpResponse> {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut slots);
        let head_len = match parsed.parse(self.pending()) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(e) => panic!(
                "server sent a malformed HTTP response ({e}): {:?}",
                String::from_utf8_lossy(self.pending())
            ),
        };
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let status = parsed.code.expect("a complete response has a status");
        let body_len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| {
                v.trim().parse::<usize>().expect("numeric Content-Length")
            });
        if self.pending().len() < head_len + body_len {
            return None;
        }
        let body = self.pending()[head_len..head_len + body_len].to_vec();
        self.consume(head_len + body_len);
        Some(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Asserts a `101 Switching Protocols` answer to `key` (§4.2.2, step 5).
pub(crate) fn assert_switching_protocols(response: &HttpResponse, key: &str) {
    assert_eq!(response.status, 101, "handshake answer: {response:?}");
    let upgrade = response.header("Upgrade").unwrap_or_default();
    assert!(
        upgrade.eq_ignore_ascii_case("websocket"),
        "Upgrade: {upgrade:?}"
    );
    let connection = response.header("Connection").unwrap_or_default();
    assert!(
        connection.eq_ignore_ascii_case("upgrade"),
        "Connection: {connection:?}"
    );
    assert_eq!(
        response.header("Sec-WebSocket-Accept"),
        Some(accept_key(key).as_str()),
        "Sec-WebSocket-Accept for key {key}"
    );
}
