//! `wsloop publish`: push one message into a room, to a user, or to everyone, through the
//! HTTP publish API, for scripts and cron jobs.
//!
//! ```text
//! wsloop publish --url http://127.0.0.1:8080 --key KEY --room orders-42 '{"title":"Shipped"}'
//! wsloop publish --key KEY --room reports @report.json     # the payload from a file
//! make-report | wsloop publish --key KEY --room reports -  # ... or from stdin
//! ```
//!
//! The payload is JSON. A payload that looks like JSON (it starts with `{`, `[` or `"`)
//! but does not parse is an error, never sent as a string by accident; `--string` sends
//! any payload as a JSON string as it is, and a plain word (`shipped`) is sent as a string.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use url::{Host, Url};

/// Flags of `wsloop publish`.
#[derive(Debug, clap::Args)]
pub(super) struct PublishArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key (the server's api.keys); the first of WSLOOP_API_KEYS if not given.
    #[arg(long, env = "WSLOOP_API_KEYS", hide_env_values = true)]
    key: String,
    /// Deliver to the members of this room.
    #[arg(long, conflicts_with = "user")]
    room: Option<String>,
    /// Deliver to every connection of this user.
    #[arg(long)]
    user: Option<String>,
    /// The message type recipients see.
    #[arg(long = "type", default_value = "notification")]
    kind: String,
    /// Send the payload as a JSON string, as it is, even if it looks like JSON.
    #[arg(long)]
    string: bool,
    /// The payload: JSON (a plain word is sent as a JSON string), `@FILE` to read it from
    /// a file, or `-` to read it from stdin.
    payload: String,
}

/// Sends the message and prints the server's answer.
pub(super) fn run(args: &PublishArgs) -> Result<(), String> {
    let text = read_payload(&args.payload)?;
    let payload = parse_payload(&text, args.string)?;
    let mut body = serde_json::json!({ "type": args.kind, "payload": payload });
    if let Some(room) = &args.room {
        body["room"] = room.clone().into();
    }
    if let Some(user) = &args.user {
        body["user_id"] = user.clone().into();
    }
    let key = args.key.split(',').next().unwrap_or("").trim();
    let (status, answer) = post(&args.url, "/api/publish", key, &body.to_string())?;
    if status == 200 {
        println!("{answer}");
        Ok(())
    } else {
        Err(format!("server answered {status}: {answer}"))
    }
}

/// The payload's text: the argument itself, a file's contents (`@FILE`) or stdin (`-`).
fn read_payload(arg: &str) -> Result<String, String> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading the payload from stdin: {e}"))?;
        return Ok(text);
    }
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("reading the payload from {path}: {e}")),
        None => Ok(arg.to_owned()),
    }
}

/// The payload as JSON: `--string` sends the text as a string; otherwise text that looks
/// like JSON must parse, and anything else (a plain word) is sent as a string.
fn parse_payload(text: &str, as_string: bool) -> Result<serde_json::Value, String> {
    if as_string {
        return Ok(serde_json::Value::String(text.to_owned()));
    }
    let trimmed = text.trim();
    match serde_json::from_str(trimmed) {
        Ok(value) => Ok(value),
        Err(e) if trimmed.starts_with(['{', '[', '"']) => Err(format!(
            "the payload looks like JSON but does not parse ({e}); \
             fix it, or pass --string to send it as text"
        )),
        Err(_) => Ok(serde_json::Value::String(trimmed.to_owned())),
    }
}

/// `http://host[:port][/]` → (`Host` header value, host to connect to, port).
///
/// Parsed by the [`url`] crate, so `http://[::1]` (an IPv6 literal, default port 80) works.
fn base_authority(base: &str, path: &str) -> Result<(String, String, u16), String> {
    let not_http = || format!("--url {base}: expected an http:// URL, e.g. http://127.0.0.1:8080");
    if !base.starts_with("http://") {
        return Err(not_http());
    }
    let url = Url::parse(base).map_err(|e| format!("--url {base}: {e}"))?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "--url {base}: give the server's base URL (e.g. http://127.0.0.1:8080); \
             wsloop publish adds {path}"
        ));
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

/// A minimal HTTP/1.1 POST; returns the status and the body.
fn post(base: &str, path: &str, key: &str, body: &str) -> Result<(u16, String), String> {
    let (authority, host, port) = base_authority(base, path)?;
    let mut stream = TcpStream::connect((host.as_str(), port))
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, answer) = text.split_once("\r\n\r\n").ok_or("malformed HTTP answer")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed status line")?;
    Ok((status, answer.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{base_authority, parse_payload};

    #[test]
    fn base_urls() {
        let ok = |base: &str| base_authority(base, "/api/publish").unwrap();
        let own = |(a, h, p): (&str, &str, u16)| (a.to_owned(), h.to_owned(), p);
        assert_eq!(
            ok("http://127.0.0.1:8080"),
            own(("127.0.0.1:8080", "127.0.0.1", 8080))
        );
        assert_eq!(
            ok("http://example.com/"),
            own(("example.com", "example.com", 80))
        );
        assert_eq!(ok("http://[::1]"), own(("[::1]", "::1", 80)));
        assert_eq!(ok("http://[::1]:9000"), own(("[::1]:9000", "::1", 9000)));
        for (bad, says) in [
            ("https://h", "expected an http:// URL"),
            ("h:8080", "expected an http:// URL"),
            ("http://h:1/api/publish", "base URL"),
            ("http://h?x=1", "base URL"),
            ("http://h:99999", "--url"),
        ] {
            let err = base_authority(bad, "/api/publish").unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_payload(r#"{"a":1}"#, false), Ok(json!({"a": 1})));
        assert_eq!(parse_payload(" [1,2]\n", false), Ok(json!([1, 2])));
        assert_eq!(parse_payload("42", false), Ok(json!(42)));
        assert_eq!(parse_payload("shipped", false), Ok(json!("shipped")));
        assert_eq!(parse_payload("shipped\n", false), Ok(json!("shipped")));
        for broken in [r#"{"a":1"#, "[1,", r#""open"#] {
            let err = parse_payload(broken, false).unwrap_err();
            assert!(err.contains("--string"), "{err}");
        }
        assert_eq!(parse_payload(r#"{"a":1"#, true), Ok(json!(r#"{"a":1"#)));
    }
}
