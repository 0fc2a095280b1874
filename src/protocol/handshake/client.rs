//! The client's side of the opening handshake (RFC 6455 §4.1): write the request, check the
//! answer.
//!
//! "If the status code received from the server is not 101, the client handles the response
//! per HTTP procedures … If the response lacks an |Upgrade| header field or the |Upgrade|
//! header field contains a value that is not an ASCII case-insensitive match for the value
//! "websocket", the client MUST _Fail the WebSocket Connection_", and likewise for
//! `Connection`, a wrong `Sec-WebSocket-Accept`, and a subprotocol that was not offered.

use std::fmt;
use std::io::Write;

use super::accept::accept_key;
use super::request::find_head_end;
use crate::protocol::deflate::{self, DeflateConfig, DeflateParams};
use crate::protocol::frame::Decoded;

/// The most headers read from a server's answer.
const MAX_RESPONSE_HEADERS: usize = 64;
/// The most bytes of a server's answer head.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// An opening handshake to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    /// `host[:port]` for the `Host` header.
    pub host: &'a str,
    /// Path and query, e.g. `/ws?user_id=42`.
    pub target: &'a str,
    /// The `Sec-WebSocket-Key` (base64 of 16 random bytes).
    pub key: &'a str,
    /// Subprotocols offered, in order of preference.
    pub protocols: &'a [String],
    /// Extra headers, e.g. `("Authorization", "Bearer …")`.
    pub headers: &'a [(String, String)],
}

impl ClientRequest<'_> {
    /// Appends the request to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            self.target, self.host, self.key
        );
        if !self.protocols.is_empty() {
            let _ = write!(
                out,
                "Sec-WebSocket-Protocol: {}\r\n",
                self.protocols.join(", ")
            );
        }
        for (name, value) in self.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The server accepted: what it agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAccept {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` the server answered with, if any: every such line,
    /// joined with `, ` (the header is a list, RFC 9110 §5.3), so none escapes the check.
    pub extensions: Option<String>,
}

/// Why the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientHandshakeError {
    /// The server answered with another status (401, 403, 429, 503 …) and this body.
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body, if it arrived with the head.
        body: String,
        /// `Retry-After` in seconds, if the server sent one.
        retry_after: Option<u64>,
    },
    /// Not an HTTP response, or one too large.
    Malformed(&'static str),
    /// 101, but `Upgrade`/`Connection`/`Sec-WebSocket-Accept` are wrong (§4.1).
    BadUpgrade(&'static str),
    /// The server chose a subprotocol the client did not offer (§4.1).
    UnofferedProtocol(String),
    /// The server's `Sec-WebSocket-Extensions` names an extension the client did not offer
    /// (§4.1), or answers its permessage-deflate offer with parameters it cannot accept
    /// (RFC 7692 §7). Holds the header value and why.
    BadExtension(String),
}

impl fmt::Display for ClientHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { status, body, .. } => {
                write!(f, "server answered {status}: {}", body.trim())
            }
            Self::Malformed(what) => write!(f, "malformed handshake response: {what}"),
            Self::BadUpgrade(what) => write!(f, "invalid handshake response: {what}"),
            Self::UnofferedProtocol(p) => {
                write!(f, "server chose subprotocol `{p}` that was not offered")
            }
            Self::BadExtension(why) => write!(f, "invalid Sec-WebSocket-Extensions: {why}"),
        }
    }
}

impl std::error::Error for ClientHandshakeError {}

/// Reads the server's answer as it arrives: each byte is searched once for the end of the
/// head, and the head is parsed once, when it is complete (a head trickling in byte by byte
/// costs linear work, not quadratic: the client's side of CVE-2023-43669).
#[derive(Debug, Clone, Default)]
pub struct ResponseParser {
    /// Bytes already searched for the end of the head.
    scanned: usize,
}

impl ResponseParser {
    /// A parser for a new answer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the answer at the start of `buf`, which holds everything received so far.
    ///
    /// Partial until the blank line (call again with the same, grown, buffer); then the
    /// accepted parameters and the length of the head (bytes after it are the first
    /// frames). A non-101 answer is an error carrying the status; bytes that cannot start
    /// an HTTP response fail at once.
    pub fn parse(
        &mut self,
        buf: &[u8],
        key: &str,
        offered: &[String],
    ) -> Result<Decoded<ServerAccept>, ClientHandshakeError> {
        const VERSION: &[u8] = b"HTTP/";
        if !VERSION.starts_with(buf.get(..VERSION.len()).unwrap_or(buf)) {
            return Err(ClientHandshakeError::Malformed("not an HTTP response"));
        }
        let Some(end) = find_head_end(buf, self.scanned.saturating_sub(3)) else {
            self.scanned = buf.len();
            if buf.len() > MAX_RESPONSE_HEAD {
                return Err(ClientHandshakeError::Malformed("response head too large"));
            }
            return Ok(Decoded::Partial);
        };
        if end > MAX_RESPONSE_HEAD {
            return Err(ClientHandshakeError::Malformed("response head too large"));
        }
        parse_head(buf, end, key, offered)
    }
}

/// Parses the server's whole answer at the start of `buf` in one go; see
/// [`ResponseParser::parse`], which a reader called once per arriving chunk should use.
pub fn parse_response(
    buf: &[u8],
    key: &str,
    offered: &[String],
) -> Result<Decoded<ServerAccept>, ClientHandshakeError> {
    ResponseParser::new().parse(buf, key, offered)
}

/// Parses and checks the complete head `buf[..end]` (§4.1).
fn parse_head(
    buf: &[u8],
    end: usize,
    key: &str,
    offered: &[String],
) -> Result<Decoded<ServerAccept>, ClientHandshakeError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let head_len = match response.parse(buf.get(..end).unwrap_or(buf)) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(ClientHandshakeError::Malformed("incomplete response head"));
        }
        Err(_) => return Err(ClientHandshakeError::Malformed("not an HTTP response")),
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let status = response.code.unwrap_or(0);
    if status != 101 {
        let body =
            String::from_utf8_lossy(&buf[head_len..buf.len().min(head_len + 512)]).into_owned();
        let retry_after = header("retry-after").and_then(|v| v.parse().ok());
        return Err(ClientHandshakeError::Status {
            status,
            body,
            retry_after,
        });
    }
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") {
        return Err(ClientHandshakeError::BadUpgrade("Upgrade is not websocket"));
    }
    if !has_token("connection", "upgrade") {
        return Err(ClientHandshakeError::BadUpgrade(
            "Connection does not contain Upgrade",
        ));
    }
    if header("sec-websocket-accept") != Some(accept_key(key).as_str()) {
        return Err(ClientHandshakeError::BadUpgrade(
            "wrong Sec-WebSocket-Accept",
        ));
    }
    let protocol = header("sec-websocket-protocol").map(str::to_owned);
    if let Some(p) = &protocol
        && !offered.contains(p)
    {
        return Err(ClientHandshakeError::UnofferedProtocol(p.clone()));
    }
    let extensions = all_lines(response.headers, "sec-websocket-extensions");
    Ok(Decoded::Complete(
        ServerAccept {
            protocol,
            extensions,
        },
        head_len,
    ))
}

/// Every line of header `name`, trimmed, joined with `, `; `None` if there is none.
fn all_lines(headers: &[httparse::Header<'_>], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| std::str::from_utf8(h.value).map_or("\u{fffd}", str::trim))
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Checks the extensions a server accepted against what the client offered: nothing, or
/// permessage-deflate under `offered` (RFC 6455 §4.1: "If the response includes a
/// |Sec-WebSocket-Extensions| header field and this header field indicates the use of an
/// extension that was not present in the client's handshake … the client MUST _Fail the
/// WebSocket Connection_"; RFC 7692 §7 for the parameters).
pub fn accepted_deflate(
    accept: &ServerAccept,
    offered: Option<&DeflateConfig>,
) -> Result<Option<DeflateParams>, ClientHandshakeError> {
    let Some(value) = accept
        .extensions
        .as_deref()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let Some(config) = offered else {
        return Err(ClientHandshakeError::BadExtension(format!(
            "`{value}` was not offered"
        )));
    };
    deflate::accept_response(value, config)
        .map(Some)
        .map_err(|refusal| ClientHandshakeError::BadExtension(format!("`{value}`: {refusal}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn accept(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn request_carries_key_version_protocols_and_headers() {
        let mut out = Vec::new();
        let protocols = ["chat".to_owned(), "superchat".to_owned()];
        let headers = [("Authorization".to_owned(), "Bearer t".to_owned())];
        ClientRequest {
            host: "h:1",
            target: "/ws?x=1",
            key: KEY,
            protocols: &protocols,
            headers: &headers,
        }
        .encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /ws?x=1 HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(text.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat, superchat\r\n"));
        assert!(text.contains("Authorization: Bearer t\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn a_good_answer_is_accepted_with_what_follows() {
        let mut buf = accept("Sec-WebSocket-Protocol: chat\r\n");
        let head = buf.len();
        buf.extend_from_slice(&[0x81, 0x00]);
        let offered = ["chat".to_owned()];
        let Ok(Decoded::Complete(got, n)) = parse_response(&buf, KEY, &offered) else {
            panic!()
        };
        assert_eq!(n, head);
        assert_eq!(got.protocol.as_deref(), Some("chat"));
        for cut in 0..head {
            assert_eq!(
                parse_response(&buf[..cut], KEY, &offered),
                Ok(Decoded::Partial)
            );
        }
    }

    #[test]
    fn wrong_answers_fail() {
        let wrong_accept = accept("")
            .iter()
            .map(|&b| if b == b'x' { b'y' } else { b })
            .collect::<Vec<_>>();
        assert!(matches!(
            parse_response(&wrong_accept, KEY, &[]),
            Err(ClientHandshakeError::BadUpgrade(_))
        ));
        let unoffered = accept("Sec-WebSocket-Protocol: mqtt\r\n");
        assert_eq!(
            parse_response(&unoffered, KEY, &[]),
            Err(ClientHandshakeError::UnofferedProtocol("mqtt".into()))
        );
        let refused = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 14\r\n\r\ntoken expired\n";
        assert_eq!(
            parse_response(refused, KEY, &[]),
            Err(ClientHandshakeError::Status {
                status: 401,
                body: "token expired\n".into(),
                retry_after: None
            })
        );
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\r\n";
        assert!(matches!(
            parse_response(busy, KEY, &[]),
            Err(ClientHandshakeError::Status {
                status: 503,
                retry_after: Some(5),
                ..
            })
        ));
        assert!(matches!(
            parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", KEY, &[]),
            Err(ClientHandshakeError::Malformed(_))
        ));
    }

    /// §4.1: every extension the response names must have been offered, whichever
    /// `Sec-WebSocket-Extensions` line names it.
    #[test]
    fn every_extensions_line_is_checked() {
        let config = DeflateConfig::default();
        let agreed = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        let second_line = format!(
            "Sec-WebSocket-Extensions: {agreed}\r\nSec-WebSocket-Extensions: x-unoffered\r\n"
        );
        let Ok(Decoded::Complete(got, _)) = parse_response(&accept(&second_line), KEY, &[]) else {
            panic!()
        };
        assert!(matches!(
            accepted_deflate(&got, Some(&config)),
            Err(ClientHandshakeError::BadExtension(_))
        ));
        let twice =
            format!("Sec-WebSocket-Extensions: {agreed}\r\nSec-WebSocket-Extensions: {agreed}\r\n");
        let Ok(Decoded::Complete(got, _)) = parse_response(&accept(&twice), KEY, &[]) else {
            panic!()
        };
        assert!(accepted_deflate(&got, Some(&config)).is_err());
        let once = format!("Sec-WebSocket-Extensions: {agreed}\r\n");
        let Ok(Decoded::Complete(got, _)) = parse_response(&accept(&once), KEY, &[]) else {
            panic!()
        };
        assert!(matches!(accepted_deflate(&got, Some(&config)), Ok(Some(_))));
    }

    /// The head is searched for its end once per byte, as it arrives, and parsed once: bytes
    /// searched by an earlier call are not searched again (the client-side twin of
    /// CVE-2023-43669's quadratic re-parse).
    #[test]
    fn the_response_head_is_read_incrementally() {
        let head = accept("X-A: aaaa\r\nX-B: b\r\n");
        let mut parser = ResponseParser::new();
        for cut in 0..head.len() {
            assert_eq!(
                parser.parse(&head[..cut], KEY, &[]),
                Ok(Decoded::Partial),
                "cut {cut}"
            );
        }
        assert!(matches!(
            parser.parse(&head, KEY, &[]),
            Ok(Decoded::Complete(_, n)) if n == head.len()
        ));

        // Rewrite bytes the parser has already searched: it does not look at them again.
        let prefix_end = head.len() - 4;
        let mut parser = ResponseParser::new();
        assert_eq!(
            parser.parse(&head[..prefix_end], KEY, &[]),
            Ok(Decoded::Partial)
        );
        let mut rewritten = head[..prefix_end].to_vec();
        let at = rewritten.windows(4).position(|w| w == b"aaaa").unwrap();
        rewritten[at..at + 4].copy_from_slice(b"\r\n\r\n");
        rewritten.extend_from_slice(b"X");
        assert_eq!(parser.parse(&rewritten, KEY, &[]), Ok(Decoded::Partial));
        assert_ne!(parse_response(&rewritten, KEY, &[]), Ok(Decoded::Partial));
    }

    #[test]
    fn a_non_http_answer_fails_before_its_end() {
        let mut parser = ResponseParser::new();
        assert!(matches!(
            parser.parse(b"SSH-2.0-OpenSSH_9.6\r\n", KEY, &[]),
            Err(ClientHandshakeError::Malformed(_))
        ));
        assert_eq!(
            ResponseParser::new().parse(b"HTT", KEY, &[]),
            Ok(Decoded::Partial)
        );
    }

    #[test]
    fn extensions_must_have_been_offered() {
        let accepted = |extensions: Option<&str>| ServerAccept {
            protocol: None,
            extensions: extensions.map(str::to_owned),
        };
        let config = DeflateConfig::default();
        assert_eq!(accepted_deflate(&accepted(None), None), Ok(None));
        assert_eq!(accepted_deflate(&accepted(None), Some(&config)), Ok(None));
        assert!(matches!(
            accepted_deflate(&accepted(Some("permessage-deflate")), None),
            Err(ClientHandshakeError::BadExtension(_))
        ));
        let answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        let params = accepted_deflate(&accepted(Some(answer)), Some(&config));
        assert!(matches!(params, Ok(Some(p)) if p.server_no_context_takeover));
        assert!(matches!(
            accepted_deflate(&accepted(Some("permessage-deflate; foo")), Some(&config)),
            Err(ClientHandshakeError::BadExtension(_))
        ));
    }
}
