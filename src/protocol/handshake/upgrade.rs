//! The server's reading of an opening handshake and its answer (RFC 6455 §4.2).
//!
//! [`validate_upgrade`] applies §4.2.1 to a parsed [`RequestHead`] and returns either the
//! [`Upgrade`] to accept or a [`Rejection`] carrying the HTTP status to answer with:
//!
//! | problem | status |
//! |---|---|
//! | method other than GET | 405, with `Allow: GET` |
//! | not HTTP/1.1, no `Host`, bad `Upgrade`/`Connection`/key, no version | 400 |
//! | more than one `Host`, `Sec-WebSocket-Key` or `Sec-WebSocket-Version` | 400 |
//! | a body declared (`Content-Length` other than 0, `Transfer-Encoding`) | 400 |
//! | no `Upgrade` header at all (a plain HTTP request) | 426, with `Upgrade: websocket` |
//! | `Sec-WebSocket-Version` other than 13 | 426, with `Sec-WebSocket-Version: 13` |
//! | head too large, too many headers | 431 |
//! | unknown path (decided by the server's routes) | 404 |

use std::fmt;

use super::accept::{accept_key, is_valid_key};
use super::request::{HeadError, RequestHead};
use crate::protocol::http::Response;

/// The only protocol version RFC 6455 defines (§4.1, item 9).
pub const WEBSOCKET_VERSION: &str = "13";

/// A handshake that may be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    /// The client's `Sec-WebSocket-Key`.
    pub key: String,
    /// The subprotocol chosen from the server's list, if the client offered one of them.
    pub protocol: Option<String>,
    /// The client's `Sec-WebSocket-Extensions` header values, one per header line, as sent:
    /// not split at commas, which may sit inside quoted parameter values (RFC 6455 §9.1).
    /// [`negotiate`](fn@crate::protocol::deflate::negotiate) reads them.
    pub extensions: Vec<String>,
}

/// Why a handshake was refused; each maps to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// §4.1: "The method of the request MUST be GET" (405).
    MethodNotAllowed,
    /// §4.1: "the HTTP version MUST be at least 1.1" (400).
    NotHttp11,
    /// §4.1: "The request MUST contain a |Host| header field" (400).
    MissingHost,
    /// RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    /// … request message that contains more than one Host header field line" (400).
    RepeatedHost,
    /// RFC 6455 §11.3.1: "The |Sec-WebSocket-Key| header field MUST NOT appear more than
    /// once in an HTTP request" (400).
    RepeatedKey,
    /// RFC 6455 §11.3.5: "The |Sec-WebSocket-Version| header field MUST NOT appear more
    /// than once in an HTTP request" (400).
    RepeatedVersion,
    /// The upgrade request declares a body (`Content-Length` other than 0, or any
    /// `Transfer-Encoding`, RFC 9112 §6.1–6.3). The bytes after the head are frames
    /// (§4.1: the handshake is a GET), so a body would be read as frames, or smuggled (400).
    BodyNotAllowed,
    /// No `Upgrade` header: a plain HTTP request to a WebSocket endpoint (426).
    NotAnUpgrade,
    /// §4.2.1: `Upgrade` must contain "websocket" (400).
    UpgradeNotWebSocket,
    /// §4.2.1: `Connection` must contain the token "Upgrade" (400).
    ConnectionNotUpgrade,
    /// §4.2.1: a `Sec-WebSocket-Key` that base64-decodes to 16 bytes is required (400).
    InvalidKey,
    /// §4.2.1: `Sec-WebSocket-Version` is required (400).
    MissingVersion,
    /// §4.4: a version other than 13 (426, with `Sec-WebSocket-Version: 13`).
    UnsupportedVersion,
    /// The request target is not a known endpoint (404).
    NotFound,
    /// The head itself was malformed or too large (400 or 431).
    Head(HeadError),
}

impl Rejection {
    /// The HTTP status that answers this rejection.
    pub const fn status(self) -> u16 {
        match self {
            Self::MethodNotAllowed => 405,
            Self::NotAnUpgrade | Self::UnsupportedVersion => 426,
            Self::NotFound => 404,
            Self::Head(head) => head.status(),
            _ => 400,
        }
    }

    /// A short plain-text explanation for the response body.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "WebSocket handshake requires GET",
            Self::NotHttp11 => "WebSocket handshake requires HTTP/1.1",
            Self::MissingHost => "missing Host header",
            Self::RepeatedHost => "more than one Host header",
            Self::RepeatedKey => "more than one Sec-WebSocket-Key header",
            Self::RepeatedVersion => "more than one Sec-WebSocket-Version header",
            Self::BodyNotAllowed => "a WebSocket upgrade request has no body",
            Self::NotAnUpgrade => "this endpoint speaks WebSocket: send Upgrade: websocket",
            Self::UpgradeNotWebSocket => "Upgrade header must be websocket",
            Self::ConnectionNotUpgrade => "Connection header must contain Upgrade",
            Self::InvalidKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
            Self::MissingVersion => "missing Sec-WebSocket-Version",
            Self::UnsupportedVersion => "unsupported WebSocket version; this server speaks 13",
            Self::NotFound => "no such endpoint",
            Self::Head(head) => head.reason(),
        }
    }

    /// The full HTTP response, with the headers the status calls for.
    pub fn response(self) -> Response {
        let response = Response::text(self.status(), self.reason());
        match self {
            Self::MethodNotAllowed => response.header("Allow", "GET"),
            Self::NotAnUpgrade => response
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", WEBSOCKET_VERSION),
            Self::UnsupportedVersion | Self::MissingVersion => {
                response.header("Sec-WebSocket-Version", WEBSOCKET_VERSION)
            }
            _ => response,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for Rejection {}

/// Whether the request asks for a WebSocket upgrade at all.
pub fn wants_upgrade(head: &RequestHead) -> bool {
    head.header("upgrade").is_some()
}

/// Checks an opening handshake against §4.2.1; picks a subprotocol from `protocols`.
///
/// The subprotocol chosen is the first one, in the client's order of preference, that the
/// server supports; with no match, none is selected and the handshake still succeeds.
pub fn validate_upgrade(head: &RequestHead, protocols: &[String]) -> Result<Upgrade, Rejection> {
    if head.method != "GET" {
        return Err(Rejection::MethodNotAllowed);
    }
    if head.minor_version < 1 {
        return Err(Rejection::NotHttp11);
    }
    if head.header("host").is_none_or(str::is_empty) {
        return Err(Rejection::MissingHost);
    }
    if let Some(repeated) = repeated_singleton(head) {
        return Err(repeated);
    }
    if declares_body(head) {
        return Err(Rejection::BodyNotAllowed);
    }
    if !wants_upgrade(head) {
        return Err(Rejection::NotAnUpgrade);
    }
    if !head.has_token("upgrade", "websocket") {
        return Err(Rejection::UpgradeNotWebSocket);
    }
    if !head.has_token("connection", "upgrade") {
        return Err(Rejection::ConnectionNotUpgrade);
    }
    match head.header("sec-websocket-version") {
        None => return Err(Rejection::MissingVersion),
        Some(WEBSOCKET_VERSION) => {}
        Some(_) => return Err(Rejection::UnsupportedVersion),
    }
    let key = head.header("sec-websocket-key").unwrap_or("");
    if !is_valid_key(key) {
        return Err(Rejection::InvalidKey);
    }
    let protocol = head
        .header_list("sec-websocket-protocol")
        .find(|offered| protocols.iter().any(|p| p == offered))
        .map(str::to_owned);
    let extensions = head
        .headers
        .iter()
        .filter(|(name, _)| name == "sec-websocket-extensions")
        .map(|(_, value)| value.trim().to_owned())
        .collect();
    Ok(Upgrade {
        key: key.to_owned(),
        protocol,
        extensions,
    })
}

/// Headers that may appear once only, and the rejection for a second one.
const SINGLETONS: [(&str, Rejection); 3] = [
    ("host", Rejection::RepeatedHost),
    ("sec-websocket-key", Rejection::RepeatedKey),
    ("sec-websocket-version", Rejection::RepeatedVersion),
];

/// The rejection for the first header of [`SINGLETONS`] that appears more than once.
fn repeated_singleton(head: &RequestHead) -> Option<Rejection> {
    SINGLETONS
        .iter()
        .find(|(name, _)| {
            head.headers
                .iter()
                .filter(|(n, _)| n == name)
                .nth(1)
                .is_some()
        })
        .map(|(_, rejection)| *rejection)
}

/// Whether the request declares a body: any `Transfer-Encoding`, a `Content-Length` other
/// than 0, or more than one `Content-Length` line.
fn declares_body(head: &RequestHead) -> bool {
    let mut lengths = head.headers.iter().filter(|(n, _)| n == "content-length");
    let too_long = lengths.next().is_some_and(|(_, v)| v.trim() != "0");
    too_long || lengths.next().is_some() || head.header("transfer-encoding").is_some()
}

/// Appends the `101 Switching Protocols` answer to `out` (§4.2.2, step 5).
///
/// `extra` holds further headers, such as a negotiated `Sec-WebSocket-Extensions`.
pub fn write_accept(upgrade: &Upgrade, extra: &[(&str, String)], out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.extend_from_slice(accept_key(&upgrade.key).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(protocol) = &upgrade.protocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(lines: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            path: "/echo".into(),
            query: None,
            minor_version: 1,
            headers: lines
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
        }
    }

    fn good() -> RequestHead {
        head(&[
            ("Host", "127.0.0.1"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
        ])
    }

    fn without(name: &str) -> RequestHead {
        let mut h = good();
        h.headers.retain(|(n, _)| n != name);
        h
    }

    fn with(name: &str, value: &str) -> RequestHead {
        let mut h = without(name);
        h.headers.push((name.to_owned(), value.to_owned()));
        h
    }

    #[test]
    fn a_good_request_is_accepted_and_answered() {
        let upgrade = validate_upgrade(&good(), &[]).unwrap();
        let mut out = Vec::new();
        write_accept(&upgrade, &[], &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert!(!text.contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn tokens_are_case_insensitive_lists() {
        let h = with("upgrade", "WebSocket");
        let h = RequestHead {
            headers: h
                .headers
                .into_iter()
                .map(|(n, v)| {
                    if n == "connection" {
                        (n, "keep-alive, UPGRADE".into())
                    } else {
                        (n, v)
                    }
                })
                .collect(),
            ..good()
        };
        assert!(validate_upgrade(&h, &[]).is_ok());
    }

    #[test]
    fn each_rejection_has_its_status() {
        let post = RequestHead {
            method: "POST".into(),
            ..good()
        };
        let http10 = RequestHead {
            minor_version: 0,
            ..good()
        };
        let cases = [
            (post, Rejection::MethodNotAllowed, 405),
            (http10, Rejection::NotHttp11, 400),
            (without("host"), Rejection::MissingHost, 400),
            (without("upgrade"), Rejection::NotAnUpgrade, 426),
            (with("upgrade", "h2c"), Rejection::UpgradeNotWebSocket, 400),
            (
                with("connection", "keep-alive"),
                Rejection::ConnectionNotUpgrade,
                400,
            ),
            (
                without("sec-websocket-version"),
                Rejection::MissingVersion,
                400,
            ),
            (
                with("sec-websocket-version", "8"),
                Rejection::UnsupportedVersion,
                426,
            ),
            (without("sec-websocket-key"), Rejection::InvalidKey, 400),
            (
                with("sec-websocket-key", "c2hvcnQ="),
                Rejection::InvalidKey,
                400,
            ),
        ];
        for (request, rejection, status) in cases {
            assert_eq!(validate_upgrade(&request, &[]), Err(rejection));
            assert_eq!(rejection.status(), status, "{rejection:?}");
        }
    }

    fn twice(name: &str, first: &str, second: &str) -> RequestHead {
        let mut h = with(name, first);
        h.headers.push((name.to_owned(), second.to_owned()));
        h
    }

    #[test]
    fn repeated_singleton_headers_are_400() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let cases = [
            (
                twice("host", "127.0.0.1", "evil.example"),
                Rejection::RepeatedHost,
            ),
            (
                twice("host", "127.0.0.1", "127.0.0.1"),
                Rejection::RepeatedHost,
            ),
            (twice("sec-websocket-key", key, key), Rejection::RepeatedKey),
            (
                twice("sec-websocket-version", "13", "13"),
                Rejection::RepeatedVersion,
            ),
        ];
        for (request, rejection) in cases {
            assert_eq!(validate_upgrade(&request, &[]), Err(rejection));
            assert_eq!(rejection.status(), 400);
        }
    }

    #[test]
    fn an_upgrade_that_declares_a_body_is_400() {
        for (name, value) in [
            ("content-length", "5"),
            ("content-length", "x"),
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "identity"),
        ] {
            let rejection = validate_upgrade(&with(name, value), &[]).unwrap_err();
            assert_eq!(rejection, Rejection::BodyNotAllowed, "{name}: {value}");
            assert_eq!(rejection.status(), 400);
        }
        assert!(validate_upgrade(&with("content-length", "0"), &[]).is_ok());
        assert_eq!(
            validate_upgrade(&twice("content-length", "0", "0"), &[]),
            Err(Rejection::BodyNotAllowed)
        );
    }

    #[test]
    fn version_426_names_the_supported_version() {
        let mut out = Vec::new();
        Rejection::UnsupportedVersion.response().encode(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
    }

    /// RFC 6455 §9.1: a comma may sit inside a quoted parameter value, so extension offers
    /// are kept as whole header values, one per header line, for the extension's parser.
    #[test]
    fn extension_offers_are_kept_as_sent() {
        let mut h = good();
        h.headers.push((
            "sec-websocket-extensions".into(),
            " permessage-deflate; x=\"a,b\", foo ".into(),
        ));
        h.headers.push((
            "sec-websocket-extensions".into(),
            "permessage-deflate".into(),
        ));
        let upgrade = validate_upgrade(&h, &[]).unwrap();
        assert_eq!(
            upgrade.extensions,
            ["permessage-deflate; x=\"a,b\", foo", "permessage-deflate"]
        );
    }

    #[test]
    fn subprotocol_is_the_clients_first_supported_choice() {
        let h = with("sec-websocket-protocol", "v2.chat, v1.chat");
        let supported = ["v1.chat".to_owned(), "v2.chat".to_owned()];
        let upgrade = validate_upgrade(&h, &supported).unwrap();
        assert_eq!(upgrade.protocol.as_deref(), Some("v2.chat"));
        let mut out = Vec::new();
        write_accept(&upgrade, &[], &mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Sec-WebSocket-Protocol: v2.chat\r\n")
        );
        let none = validate_upgrade(&with("sec-websocket-protocol", "mqtt"), &supported).unwrap();
        assert_eq!(none.protocol, None);
    }
}
