//! Plain HTTP/1.1 responses: the status line, headers and a short body (RFC 9110, RFC 9112).
//!
//! Used for the handshake's answers (101 and every refusal) and for the few plain endpoints
//! the server has (`/healthz`, `/metrics`, …). Writing into a caller's `Vec<u8>` keeps this
//! sans-IO like the rest of the protocol module.

use std::io::Write;

/// The reason phrase for the status codes wsloop sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A complete HTTP response to write to a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers, in order. `Content-Length` is added by [`Response::encode`].
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Whether to send `Connection: close` (and close after writing).
    pub close: bool,
    /// An answer to `HEAD`: the head of the `GET` answer, `Content-Length` included, and
    /// no body (RFC 9110 §9.3.2).
    pub head_only: bool,
}

impl Response {
    /// A response with a plain-text body, closing the connection afterwards.
    pub fn text(status: u16, body: &str) -> Self {
        let mut body = body.as_bytes().to_vec();
        body.push(b'\n');
        Self {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_owned())],
            body,
            close: true,
            head_only: false,
        }
    }

    /// A response with a body of the given content type, closing the connection afterwards.
    pub fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
            close: true,
            head_only: false,
        }
    }

    /// The same response as an answer to `HEAD`: its head only.
    pub fn for_head(mut self) -> Self {
        self.head_only = true;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Appends the response, head and body, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_response_has_length_and_close() {
        let mut out = Vec::new();
        Response::text(404, "no such endpoint").encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 17\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nno such endpoint\n"));
    }

    #[test]
    fn head_answer_has_the_length_but_no_body() {
        let mut out = Vec::new();
        Response::text(200, "ok").for_head().encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }

    #[test]
    fn extra_headers_are_written_in_order() {
        let mut out = Vec::new();
        Response::text(426, "x")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        let upgrade = text.find("Upgrade: websocket").unwrap();
        let version = text.find("Sec-WebSocket-Version: 13").unwrap();
        assert!(upgrade < version);
    }
}
