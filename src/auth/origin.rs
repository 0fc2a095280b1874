//! Which browser origins may open a WebSocket (RFC 6455 §10.2, RFC 6454).
//!
//! Browsers send `Origin` with every WebSocket handshake; a server that accepts any origin
//! lets any web page a user visits talk to it with the user's cookies (cross-site WebSocket
//! hijacking). The policy is an allow-list of exact origins and host wildcards
//! (`https://*.example.com`); same-origin requests (the Origin's host and port equal the
//! `Host` header, like gorilla/websocket's default) pass too, so the chat page the server
//! serves keeps working, unless a switch turns that off for a strict list. Requests with
//! no `Origin` (non-browser clients) are allowed or refused by a switch.
//!
//! The parsing here stays hand-written on purpose, not the `url` crate's (which the client
//! uses, `src/client/url.rs`). An `Origin` header is a serialized origin, `scheme://host
//! [:port]` and nothing else (RFC 6454 §6.2), and a security check should refuse anything
//! else. The `url` crate parses by WHATWG rules, which are lenient by design: it accepts
//! and repairs user info (`https://user@a.example.com`), a path or a trailing `/`, tabs and
//! newlines inside the text, `\` for `/`, `https:a.example.com` without slashes, `127.1`
//! for `127.0.0.1`, Unicode host names and `*` as a host character. Each of those would
//! need a check in front of it to keep the allow-list's meaning, so the crate would add
//! code here, not remove it; the hand-written split covers what browsers actually send
//! (ASCII, lower-cased here, bracketed IPv6, default ports 80/443).

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `scheme://host:port`, normalized.
    Exact(String),
    /// `scheme://*.suffix[:port]`: any subdomain of `suffix`.
    Wildcard {
        /// `http` or `https`.
        scheme: String,
        /// `.example.com`, with the leading dot.
        suffix: String,
        /// The port, defaulted from the scheme.
        port: u16,
    },
}

/// Why an origin was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginError {
    /// No `Origin` header, and such requests are refused.
    Missing,
    /// The origin is not on the list (or not the same origin).
    NotAllowed(String),
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("Origin header required"),
            Self::NotAllowed(origin) => write!(f, "origin {origin} is not allowed"),
        }
    }
}

/// The origin allow-list.
///
/// ```
/// use wsloop::auth::OriginPolicy;
///
/// let list = ["https://*.example.com".to_owned()];
/// let policy = OriginPolicy::new(&list, true).unwrap();
/// assert!(policy.check(Some("https://chat.example.com"), None).is_ok());
/// assert!(policy.check(Some("https://evil.test"), None).is_err());
/// // The server's own origin passes too, unless `with_same_origin(false)`.
/// assert!(policy.check(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")).is_ok());
/// assert!(policy.check(None, None).is_ok()); // no Origin: allowed by the second argument
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    patterns: Vec<Pattern>,
    allow_missing: bool,
    same_origin: bool,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        Self {
            patterns: Vec::new(),
            allow_missing: true,
            same_origin: true,
        }
    }
}

impl OriginPolicy {
    /// Builds the policy; each entry is `scheme://host[:port]` or `scheme://*.domain[:port]`.
    pub fn new(allowed: &[String], allow_missing: bool) -> Result<Self, String> {
        let patterns = allowed
            .iter()
            .map(|a| parse_pattern(a))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            patterns,
            allow_missing,
            same_origin: true,
        })
    }

    /// Whether same-origin requests pass besides the list (default: yes, so the server's
    /// own chat page works with any list). Without a list they always do.
    pub fn with_same_origin(mut self, allowed: bool) -> Self {
        self.same_origin = allowed;
        self
    }

    /// Checks a request's `Origin` against the policy; `host` is its `Host` header.
    pub fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<(), OriginError> {
        let Some(origin) = origin else {
            return if self.allow_missing {
                Ok(())
            } else {
                Err(OriginError::Missing)
            };
        };
        let refused = || OriginError::NotAllowed(origin.chars().take(100).collect());
        let (scheme, host_part, port) = split_origin(origin).ok_or_else(refused)?;
        let listed = || {
            self.patterns
                .iter()
                .any(|p| matches(p, &scheme, &host_part, port))
        };
        let own = self.same_origin || self.patterns.is_empty();
        let allowed = (own && same_origin(&host_part, port, &scheme, host)) || listed();
        if allowed { Ok(()) } else { Err(refused()) }
    }
}

fn matches(pattern: &Pattern, scheme: &str, host: &str, port: u16) -> bool {
    match pattern {
        Pattern::Exact(exact) => *exact == format!("{scheme}://{host}:{port}"),
        Pattern::Wildcard {
            scheme: s,
            suffix,
            port: p,
        } => {
            s == scheme
                && *p == port
                && host.len() > suffix.len()
                && host.ends_with(suffix.as_str())
        }
    }
}

/// Same origin: the Origin's host and port equal the `Host` header's.
fn same_origin(origin_host: &str, origin_port: u16, scheme: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let (name, port) = split_host_port(&host.to_ascii_lowercase(), default_port(scheme));
    name == origin_host && port == origin_port
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// `host[:port]` → (host, port), bracketed IPv6 hosts included.
fn split_host_port(authority: &str, default: u16) -> (String, u16) {
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((ip, tail)) = rest.split_once(']')
    {
        let port = tail
            .strip_prefix(':')
            .and_then(|p| p.parse().ok())
            .unwrap_or(default);
        return (format!("[{ip}]"), port);
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => {
            (name.to_owned(), port.parse().unwrap_or(default))
        }
        _ => (authority.to_owned(), default),
    }
}

/// `scheme://host[:port]` → (scheme, host, port), lower-cased; `None` for anything else
/// (`null`, paths, other schemes).
fn split_origin(origin: &str) -> Option<(String, String, u16)> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() || authority.contains('/') {
        return None;
    }
    let (host, port) = split_host_port(authority, default_port(scheme));
    valid_host(&host).then(|| (scheme.to_owned(), host, port))
}

/// A DNS name (letters, digits, hyphens in non-empty dot-separated labels) or a bracketed
/// IPv6 address; anything else (`*`, `@`, spaces, an unparsable port) is not a host.
fn valid_host(host: &str) -> bool {
    if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !ip.is_empty()
            && ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    let bad = || {
        format!(
            "allowed origin `{text}` must look like https://app.example.com or https://*.example.com"
        )
    };
    let lowered = text.trim().to_ascii_lowercase();
    if let Some((scheme, rest)) = lowered.split_once("://*.") {
        let probe = format!("{scheme}://x.{rest}");
        let (scheme, host, port) = split_origin(&probe).ok_or_else(bad)?;
        let suffix = host.strip_prefix('x').ok_or_else(bad)?.to_owned();
        if suffix.matches('.').count() < 2 {
            return Err(format!(
                "allowed origin `{text}`: a wildcard needs a domain of two labels or more (https://*.example.com)"
            ));
        }

        return Ok(Pattern::Wildcard {
            scheme,
            suffix,
            port,
        });
    }
    let (scheme, host, port) = split_origin(&lowered).ok_or_else(bad)?;
    Ok(Pattern::Exact(format!("{scheme}://{host}:{port}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &[&str], allow_missing: bool) -> OriginPolicy {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        OriginPolicy::new(&list, allow_missing).unwrap()
    }

    #[test]
    fn exact_and_wildcard_entries() {
        let p = policy(
            &[
                "https://app.example.com",
                "https://*.example.org",
                "http://localhost:3000",
            ],
            true,
        );
        assert_eq!(p.check(Some("https://app.example.com"), None), Ok(()));
        assert_eq!(p.check(Some("https://APP.example.com:443"), None), Ok(()));
        assert_eq!(p.check(Some("https://a.b.example.org"), None), Ok(()));
        assert_eq!(p.check(Some("http://localhost:3000"), None), Ok(()));
        for bad in [
            "https://evil.com",
            "http://app.example.com",
            "https://example.org",
            "https://notexample.org",
            "https://app.example.com:8443",
            "null",
            "file://x",
            "https://app.example.com/path",
        ] {
            assert!(p.check(Some(bad), None).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_servers_own_origin_passes_a_list_unless_switched_off() {
        let p = policy(&["https://*.example.com"], true);
        let own = (Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(p.check(own.0, own.1), Ok(()));
        assert!(p.check(Some("http://evil.test"), own.1).is_err());
        let strict = p.with_same_origin(false);
        assert!(strict.check(own.0, own.1).is_err());
        assert_eq!(strict.check(Some("https://a.example.com"), own.1), Ok(()));
    }

    #[test]
    fn default_is_same_origin() {
        let p = OriginPolicy::default();
        assert_eq!(
            p.check(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")),
            Ok(())
        );
        assert_eq!(
            p.check(Some("http://chat.example.com"), Some("chat.example.com")),
            Ok(())
        );
        assert_eq!(
            p.check(
                Some("https://chat.example.com"),
                Some("chat.example.com:443")
            ),
            Ok(())
        );
        assert!(
            p.check(Some("http://evil.com"), Some("127.0.0.1:8080"))
                .is_err()
        );
        assert!(
            p.check(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080"))
                .is_err()
        );
        assert!(p.check(Some("http://127.0.0.1:8080"), None).is_err());
    }

    #[test]
    fn missing_origin_switch() {
        assert_eq!(policy(&[], true).check(None, Some("h")), Ok(()));
        assert_eq!(
            policy(&[], false).check(None, Some("h")),
            Err(OriginError::Missing)
        );
    }

    #[test]
    fn bad_patterns_are_refused_at_startup() {
        for bad in [
            "example.com",
            "ftp://x.com",
            "https://",
            "https://x.com/path",
            "https://*",
            "https://*.com",
            "https://a.*.com",
            "https://*.*.example.com",
            "https://ex ample.com",
            "https://:443",
            "https://example.com:99999",
            "https://user@example.com",
        ] {
            assert!(OriginPolicy::new(&[bad.to_owned()], true).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_hosts() {
        let p = OriginPolicy::default();
        assert_eq!(
            p.check(Some("http://[::1]:8080"), Some("[::1]:8080")),
            Ok(())
        );
    }
}
