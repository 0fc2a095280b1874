//! The HTTP request head, parsed incrementally with `httparse` (RFC 9112 §2, RFC 6455 §4.1).
//!
//! [`HeadParser::parse`] answers Partial until the blank line that ends the head has arrived,
//! then parses the head once and says how many bytes it took, so the bytes after it (a frame
//! pipelined with the handshake, or a request body) are handed on rather than lost. It keeps
//! the position up to which it has searched for the blank line, so a head that arrives one
//! byte at a time costs linear, not quadratic, work (CVE-2023-43669). Heads over the byte or
//! header-count limit are refused with 431.

use crate::protocol::frame::Decoded;

/// Limits on the request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// The most bytes the head (request line and headers) may take. Default: 8 KiB.
    pub max_bytes: usize,
    /// The most header fields. Default: 32.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 8 * 1024,
            max_headers: 32,
        }
    }
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadError {
    /// The head is longer than `max_bytes` (431).
    TooLarge,
    /// More than `max_headers` header fields (431).
    TooManyHeaders,
    /// The bytes are not an HTTP/1.x request head (400); the text says what is wrong.
    Malformed(&'static str),
}

impl HeadError {
    /// The HTTP status that answers this error.
    pub const fn status(self) -> u16 {
        match self {
            Self::TooLarge | Self::TooManyHeaders => 431,
            Self::Malformed(_) => 400,
        }
    }

    /// A short explanation for the response body.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::TooLarge => "request header too large",
            Self::TooManyHeaders => "too many request headers",
            Self::Malformed(what) => what,
        }
    }
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HeadError {}

/// An owned, parsed request head.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHead {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path of the request target, without the query.
    pub path: String,
    /// The query string after `?`, if any (not decoded).
    pub query: Option<String>,
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of the header `name` (lower-case), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    }

    /// Every comma-separated element of every `name` header, trimmed, empty ones skipped
    /// (RFC 9110 §5.6.1 list syntax).
    pub fn header_list<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Whether the list header `name` contains `token`, compared case-insensitively.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_list(name)
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The value of query parameter `key`, percent-decoded, if present.
    pub fn query_param(&self, key: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k)? == key)
                .then(|| percent_decode(v))
                .flatten()
        })
    }

    /// Whether the query has parameter `key` at all (even with a value that does not decode).
    pub fn has_query_key(&self, key: &str) -> bool {
        let Some(query) = self.query.as_deref() else {
            return false;
        };
        query.split('&').any(|pair| {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            percent_decode(name).as_deref() == Some(key)
        })
    }

    /// The path and the query with every parameter value replaced by `***`, for logs.
    pub fn redacted_target(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{}", self.path, redact_query(query)),
            None => self.path.clone(),
        }
    }
}

/// A query string with every parameter value replaced by `***` (`token=***&user_id=***`),
/// so tokens never reach a log or a terminal. The server's logs and `wsloop client` use it.
pub fn redact_query(query: &str) -> String {
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| format!("{}=***", pair.split('=').next().unwrap_or("")))
        .collect();
    redacted.join("&")
}

/// Decodes `%XX` escapes and `+` as space in a query component; `None` if not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// An incremental parser for one request head.
#[derive(Debug, Clone, Default)]
pub struct HeadParser {
    /// Bytes already searched for the end of the head.
    scanned: usize,
    /// The limits in force.
    limits: HeadLimits,
}

impl HeadParser {
    /// A parser with the given limits.
    pub fn new(limits: HeadLimits) -> Self {
        Self { scanned: 0, limits }
    }

    /// Parses the head at the start of `buf`, which holds everything received so far.
    ///
    /// Returns the head and its length in bytes once the blank line is in `buf`; Partial
    /// before that. Call again with the same, grown, buffer.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Decoded<RequestHead>, HeadError> {
        let from = self.scanned.saturating_sub(3);
        let Some(end) = find_head_end(buf, from) else {
            self.scanned = buf.len();
            if buf.len() > self.limits.max_bytes {
                return Err(HeadError::TooLarge);
            }
            return Ok(Decoded::Partial);
        };
        if end > self.limits.max_bytes {
            return Err(HeadError::TooLarge);
        }
        parse_head(&buf[..end], self.limits.max_headers).map(|head| Decoded::Complete(head, end))
    }
}

/// Finds the end of the head (just past `\r\n\r\n` or `\n\n`), searching from `from`.
pub(super) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.min(buf.len());
    buf[start..].iter().enumerate().find_map(|(i, &b)| {
        let at = start + i;
        let ends = b == b'\n'
            && (at >= 1 && buf[at - 1] == b'\n'
                || at >= 3 && buf[at - 1] == b'\r' && buf[at - 2] == b'\n');
        ends.then_some(at + 1)
    })
}

/// The path and query of a request target.
///
/// RFC 9112 §3.2.2: "a server MUST accept the absolute-form in requests even though most
/// HTTP/1.1 clients will only send the absolute-form to a proxy"; such a target
/// (`http://host:port/echo?x`) is routed by its path, and an empty path is `/` (§3.2.1).
fn split_target(target: &str) -> (&str, Option<&str>) {
    let target = without_authority(target);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    (if path.is_empty() { "/" } else { path }, query)
}

/// An absolute-form target (`scheme://authority/path?query`) without its scheme and
/// authority; any other target as it is.
fn without_authority(target: &str) -> &str {
    match split_absolute(target) {
        Some((_, rest)) => rest,
        None => target,
    }
}

/// An absolute-form target's authority (without userinfo) and the rest (path and query);
/// `None` for any other form.
fn split_absolute(target: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = target.split_once("://")?;
    let web = ["http", "https", "ws", "wss"];
    if !web.iter().any(|w| scheme.eq_ignore_ascii_case(w)) {
        return None;
    }
    let at = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..at];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some((host, &rest[at..]))
}

/// Parses a complete head with `httparse`.
fn parse_head(head: &[u8], max_headers: usize) -> Result<RequestHead, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(HeadError::Malformed("incomplete request head"));
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(_) => return Err(HeadError::Malformed("malformed HTTP request")),
    }
    let (path, query) = split_target(req.path.unwrap_or("/"));
    let query = query.map(str::to_owned);
    let headers = req
        .headers
        .iter()
        .map(|h| {
            let value = std::str::from_utf8(h.value)
                .map_err(|_| HeadError::Malformed("header value is not UTF-8"))?;
            Ok((h.name.to_ascii_lowercase(), value.to_owned()))
        })
        .collect::<Result<Vec<_>, HeadError>>()?;
    // RFC 9112 §3.2.2: "When an origin server receives a request with an absolute-form of
    // request-target, the origin server MUST ignore the received Host header field (if
    // any) and instead use the host information of the request-target."
    let headers = match req.path.and_then(split_absolute) {
        Some((authority, _)) => {
            let mut headers: Vec<(String, String)> =
                headers.into_iter().filter(|(n, _)| n != "host").collect();
            headers.push(("host".to_owned(), authority.to_owned()));
            headers
        }
        None => headers,
    };
    Ok(RequestHead {
        method: req.method.unwrap_or("").to_owned(),
        path: path.to_owned(),
        query,
        minor_version: req.version.unwrap_or(0),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET /chat?user_id=42&token=abc HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    fn complete(buf: &[u8]) -> (RequestHead, usize) {
        match HeadParser::new(HeadLimits::default()).parse(buf) {
            Ok(Decoded::Complete(h, n)) => (h, n),
            other => panic!("expected complete, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_rfc_example_request() {
        let (head, n) = complete(REQUEST);
        assert_eq!(n, REQUEST.len());
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/chat");
        assert_eq!(head.query.as_deref(), Some("user_id=42&token=abc"));
        assert_eq!(head.minor_version, 1);
        assert_eq!(head.header("host"), Some("server.example.com"));
        assert!(head.has_token("connection", "upgrade"));
        assert_eq!(
            head.header_list("sec-websocket-protocol")
                .collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        assert_eq!(head.query_param("user_id").as_deref(), Some("42"));
        assert_eq!(head.redacted_target(), "/chat?user_id=***&token=***");
    }

    #[test]
    fn every_prefix_is_partial_and_bytes_after_are_kept() {
        let mut parser = HeadParser::new(HeadLimits::default());
        for cut in 0..REQUEST.len() {
            assert_eq!(
                parser.parse(&REQUEST[..cut]),
                Ok(Decoded::Partial),
                "cut {cut}"
            );
        }
        let mut with_tail = REQUEST.to_vec();
        with_tail.extend_from_slice(&[0x81, 0x80]);
        match parser.parse(&with_tail) {
            Ok(Decoded::Complete(_, n)) => assert_eq!(&with_tail[n..], &[0x81, 0x80]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn head_over_the_byte_limit_is_431() {
        let limits = HeadLimits {
            max_bytes: 64,
            max_headers: 32,
        };
        let mut parser = HeadParser::new(limits);
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(parser.parse(&long), Err(HeadError::TooLarge));
        assert_eq!(
            HeadParser::new(limits).parse(REQUEST),
            Err(HeadError::TooLarge)
        );
        assert_eq!(HeadError::TooLarge.status(), 431);
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut req = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            req.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let err = HeadParser::new(HeadLimits::default()).parse(&req);
        assert_eq!(err, Err(HeadError::TooManyHeaders));
        assert_eq!(HeadError::TooManyHeaders.status(), 431);
    }

    #[test]
    fn garbage_is_400() {
        let err = HeadParser::new(HeadLimits::default()).parse(b"\x16\x03\x01 hello\r\n\r\n");
        assert!(matches!(err, Err(HeadError::Malformed(_))));
        assert_eq!(err.unwrap_err().status(), 400);
    }

    #[test]
    fn bare_newlines_end_the_head() {
        let (head, n) = complete(b"GET /x HTTP/1.1\nHost: a\n\nrest");
        assert_eq!((head.path.as_str(), n), ("/x", 25));
    }

    // RFC 9112 §3.2.2: "a server MUST accept the absolute-form in requests".
    #[test]
    fn an_absolute_form_target_is_routed_by_its_path() {
        let cases: [(&[u8], &str, Option<&str>); 6] = [
            (b"GET http://h:8080/echo HTTP/1.1\r\n\r\n", "/echo", None),
            (
                b"GET HTTPS://h/ws?user_id=1 HTTP/1.1\r\n\r\n",
                "/ws",
                Some("user_id=1"),
            ),
            (b"GET ws://h:1/a/b HTTP/1.1\r\n\r\n", "/a/b", None),
            (b"GET http://h HTTP/1.1\r\n\r\n", "/", None),
            (b"GET http://h?x=1 HTTP/1.1\r\n\r\n", "/", Some("x=1")),
            (b"GET /plain?q HTTP/1.1\r\n\r\n", "/plain", Some("q")),
        ];
        for (request, path, query) in cases {
            let (head, _) = complete(request);
            assert_eq!((head.path.as_str(), head.query.as_deref()), (path, query));
        }
    }

    // RFC 9112 §3.2.2: with an absolute-form target, Host is ignored for the target's own.
    #[test]
    fn an_absolute_form_target_names_the_host() {
        let (head, _) = complete(b"GET http://app.example:8080/ws HTTP/1.1\r\nHost: evil\r\n\r\n");
        assert_eq!(head.header("host"), Some("app.example:8080"));
        let (head, _) = complete(b"GET ws://u:p@h.example/echo HTTP/1.1\r\n\r\n");
        assert_eq!(head.header("host"), Some("h.example"));
        let (head, _) = complete(b"GET /origin-form HTTP/1.1\r\nHost: kept\r\n\r\n");
        assert_eq!(head.header("host"), Some("kept"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("%").as_deref(), Some("%"));
        assert_eq!(percent_decode("%ff"), None);
    }
}
