//! The one-shot HTTP/1.1 client of the operator commands (`wsloop publish`, `wsloop admin`):
//! one request with `Authorization: Bearer KEY` on a fresh connection, the answer read up to
//! the server's EOF (`Connection: close`).
//!
//! Deliberately small: `http://` only, a body read to EOF (the API answers with
//! `Content-Length` and closes), a 10 s read timeout so a silent server fails the command.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use url::{Host, Url};

/// How long a read may block before the command gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer: the status and the body, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    /// The HTTP status code.
    pub(super) status: u16,
    /// The body as text (lossy UTF-8), surrounding whitespace trimmed.
    pub(super) body: String,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HttpError {
    /// The `--url` is not a base `http://host[:port]` URL: the caller's fault.
    BadUrl(String),
    /// Connecting, writing or reading failed, or the answer was not HTTP.
    Network(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadUrl(message) | Self::Network(message) => f.write_str(message),
        }
    }
}

impl From<HttpError> for String {
    fn from(error: HttpError) -> Self {
        error.to_string()
    }
}

/// `METHOD base+path` with the key, and a JSON body when one is given.
pub(super) fn request(
    base: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> Result<Answer, HttpError> {
    let (authority, host, port) = base_authority(base, path)?;
    let network = |e: std::io::Error| HttpError::Network(format!("{authority}: {e}"));
    let mut stream = TcpStream::connect((host.as_str(), port))
        .map_err(|e| HttpError::Network(format!("cannot connect to {authority}: {e}")))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(network)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\n\
         Connection: close\r\n"
    );
    if let Some(body) = body {
        head.push_str("Content-Type: application/json\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or(""));
    stream.write_all(head.as_bytes()).map_err(network)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(network)?;
    parse_answer(&response)
}

/// `http://host[:port][/]` → (`Host` header value, host to connect to, port).
///
/// Parsed by the [`url`] crate, so `http://[::1]` (an IPv6 literal, default port 80) works.
fn base_authority(base: &str, path: &str) -> Result<(String, String, u16), HttpError> {
    let not_http = || {
        HttpError::BadUrl(format!(
            "--url {base}: expected an http:// URL, e.g. http://127.0.0.1:8080"
        ))
    };
    if !base.starts_with("http://") {
        return Err(not_http());
    }
    let url = Url::parse(base).map_err(|e| HttpError::BadUrl(format!("--url {base}: {e}")))?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(HttpError::BadUrl(format!(
            "--url {base}: give the server's base URL (e.g. http://127.0.0.1:8080); \
             wsloop adds {path}"
        )));
    }
    let (Some(name), Some(host)) = (url.host_str(), url.host()) else {
        return Err(not_http());
    };
    let authority = match url.port() {
        Some(port) => format!("{name}:{port}"),
        None => name.to_owned(),
    };
    let host = match host {
        Host::Ipv6(ip) => ip.to_string(),
        other => other.to_string(),
    };
    Ok((authority, host, url.port_or_known_default().unwrap_or(80)))
}

/// The status and body of a whole response.
fn parse_answer(response: &[u8]) -> Result<Answer, HttpError> {
    let text = String::from_utf8_lossy(response);
    let malformed = |what: &str| HttpError::Network(format!("malformed HTTP answer: {what}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| malformed("no end of head"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed("no status"))?;
    Ok(Answer {
        status,
        body: body.trim().to_owned(),
    })
}

/// Percent-encodes `segment` for use as one path segment (RFC 3986 unreserved kept).
pub(super) fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok = |base: &str| base_authority(base, "/x").expect("a base URL");
        let own = |(a, h, p): (&str, &str, u16)| (a.to_owned(), h.to_owned(), p);
        assert_eq!(
            ok("http://127.0.0.1:8080"),
            own(("127.0.0.1:8080", "127.0.0.1", 8080))
        );
        assert_eq!(ok("http://h/"), own(("h", "h", 80)));
        assert_eq!(ok("http://[::1]"), own(("[::1]", "::1", 80)));
        assert_eq!(ok("http://[::1]:9000"), own(("[::1]:9000", "::1", 9000)));
        for bad in [
            "https://h",
            "h:80",
            "http://h/api",
            "http://",
            "http://h?x=1",
            "http://h:99999",
        ] {
            assert!(
                matches!(base_authority(bad, "/x"), Err(HttpError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers() {
        let ok = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}\n");
        assert_eq!(
            ok,
            Ok(Answer {
                status: 200,
                body: "{}".into()
            })
        );
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_answer(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn path_segments() {
        assert_eq!(path_segment("team-1_a.b~"), "team-1_a.b~");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(path_segment("é"), "%C3%A9");
    }
}
