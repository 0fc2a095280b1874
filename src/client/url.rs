//! `ws://host[:port][/path][?query]` and `wss://…` (TLS, port 443 by default) URLs.
//!
//! The parsing is the [`url`] crate's; this module picks what a WebSocket client needs from
//! it (host, port, request target, TLS or not) and builds the `Host` header.

use std::fmt;

use url::{Host, ParseError, Url};

use crate::protocol::handshake::redact_query;

/// A parsed WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The port (default 80, or 443 for `wss://`).
    pub port: u16,
    /// `wss://` (or `https://`): the connection speaks TLS.
    pub secure: bool,
    /// Path and query, at least `/`.
    pub target: String,
}

impl WsUrl {
    /// Parses `ws://…` or `wss://…` (`http://` and `https://` are treated the same).
    ///
    /// The authority, path and query are parsed by the [`url`] crate (WHATWG URL rules):
    /// IPv6 literals in brackets, the default port of the scheme, international domain
    /// names turned into their ASCII form, and characters a request line cannot carry
    /// (a space, say) percent-encoded. User names and fragments are refused: the handshake
    /// has nowhere to put them (RFC 6455 §3: "Fragment identifiers are meaningless in the
    /// context of WebSocket URIs and MUST NOT be used on these URIs").
    ///
    /// ```
    /// use wsloop::client::WsUrl;
    ///
    /// let url = WsUrl::parse("wss://[::1]/chat room?token=t").unwrap();
    /// assert_eq!((url.host.as_str(), url.port, url.secure), ("::1", 443, true));
    /// assert_eq!(url.target, "/chat%20room?token=t");
    /// assert_eq!(url.host_header(), "[::1]");
    /// assert!(WsUrl::parse("ftp://example.com").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Self, String> {
        let expected = || format!("{url}: expected a ws:// URL (or wss:// for TLS)");
        let secure = [
            ("ws://", false),
            ("http://", false),
            ("wss://", true),
            ("https://", true),
        ]
        .iter()
        .find_map(|(scheme, secure)| url.starts_with(scheme).then_some(*secure))
        .ok_or_else(expected)?;
        let parsed = Url::parse(url).map_err(|e| match e {
            ParseError::EmptyHost => format!("{url}: missing host"),
            ParseError::InvalidPort => format!("{url}: bad port"),
            other => format!("{url}: bad host ({other})"),
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!(
                "{url}: a user name or password in the URL is not supported"
            ));
        }
        if parsed.fragment().is_some() {
            return Err(format!("{url}: a WebSocket URL has no #fragment"));
        }
        let host = match parsed.host() {
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(format!("{url}: missing host")),
        };
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if secure { 443 } else { 80 });
        let target = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        Ok(Self {
            host,
            port,
            target,
            secure,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The URL with every query value replaced by `***` (`?token=***`), for messages: a
    /// token must not end up in a terminal's scrollback or a CI log.
    pub fn redacted(&self) -> String {
        match self.target.split_once('?') {
            Some((path, query)) => {
                let (scheme, host) = (self.scheme(), self.host_header());
                format!("{scheme}://{host}{path}?{}", redact_query(query))
            }
            None => self.to_string(),
        }
    }

    fn default_port(&self) -> u16 {
        if self.secure { 443 } else { 80 }
    }

    /// `ws` or `wss`.
    pub fn scheme(&self) -> &'static str {
        if self.secure { "wss" } else { "ws" }
    }

    /// `host:port` for `TcpStream::connect`.
    pub fn socket_addr(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }
}

impl fmt::Display for WsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme(),
            self.host_header(),
            self.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let u = WsUrl::parse("ws://127.0.0.1:8080/ws?user_id=42").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 8080, "/ws?user_id=42")
        );
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = WsUrl::parse("ws://example.com").unwrap();
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header().as_str()),
            (80, "/", "example.com")
        );
        let u = WsUrl::parse("ws://[::1]:9001?x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 9001, "/?x")
        );
        assert_eq!(u.to_string(), "ws://[::1]:9001/?x");
    }

    #[test]
    fn redacted_hides_every_query_value() {
        let u = WsUrl::parse("ws://h:1/ws?token=eyJabc.def&user_id=v").unwrap();
        assert_eq!(u.redacted(), "ws://h:1/ws?token=***&user_id=***");
        let u = WsUrl::parse("ws://h/echo").unwrap();
        assert_eq!(u.redacted(), "ws://h/echo");
    }

    #[test]
    fn wss_defaults_to_443() {
        let u = WsUrl::parse("wss://example.com/ws?token=x").unwrap();
        assert!(u.secure);
        assert_eq!((u.port, u.host_header().as_str()), (443, "example.com"));
        assert_eq!(u.redacted(), "wss://example.com/ws?token=***");
        let u = WsUrl::parse("wss://[::1]:8443").unwrap();
        assert_eq!(u.to_string(), "wss://[::1]:8443/");
        assert!(!WsUrl::parse("ws://h").unwrap().secure);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(WsUrl::parse("ftp://x").is_err());
        assert!(WsUrl::parse("ws://:80/").is_err());
        assert!(WsUrl::parse("ws://h:notaport/").is_err());
        assert!(WsUrl::parse("ws://h:99999/").is_err());
        assert!(WsUrl::parse("ws://user:pw@h/").is_err());
        assert!(WsUrl::parse("ws://h/#frag").is_err());
        assert!(WsUrl::parse("ws:h").is_err());
        let e = WsUrl::parse("http//nowhere").unwrap_err();
        assert!(e.contains("expected a ws:// URL"), "{e}");
    }

    #[test]
    fn what_the_url_crate_adds() {
        let u = WsUrl::parse("ws://[::1]/a b?q=x y").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(u.target, "/a%20b?q=x%20y");
        assert_eq!(u.host_header(), "[::1]");
        let u = WsUrl::parse("wss://Bücher.Example:8443/").unwrap();
        assert_eq!(u.host, "xn--bcher-kva.example");
        assert_eq!(u.host_header(), "xn--bcher-kva.example:8443");
        let u = WsUrl::parse("ws://example.com:80/x").unwrap();
        assert_eq!(u.to_string(), "ws://example.com/x");
    }
}
