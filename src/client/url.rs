//! `ws://host[:port][/path][?query]` and `wss://…` (TLS, port 443 by default) URLs.

use std::fmt;

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
    pub fn parse(url: &str) -> Result<Self, String> {
        let (rest, secure) = [
            ("ws://", false),
            ("http://", false),
            ("wss://", true),
            ("https://", true),
        ]
        .iter()
        .find_map(|(scheme, secure)| url.strip_prefix(scheme).map(|rest| (rest, *secure)))
        .ok_or_else(|| format!("{url}: expected a ws:// URL (or wss:// for TLS)"))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = split_authority(authority, default_port)
            .ok_or_else(|| format!("{url}: bad host or port"))?;
        if host.is_empty() {
            return Err(format!("{url}: missing host"));
        }
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

fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (ip, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if tail.is_empty() => default_port,
            None => return None,
        };
        return Some((ip.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
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
    }
}
