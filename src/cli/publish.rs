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

use std::io::Read;

use super::http;

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
    let body = body.to_string();
    let answer = http::request(&args.url, "POST", "/api/publish", key, Some(&body))?;
    if answer.status == 200 {
        println!("{}", answer.body);
        Ok(())
    } else {
        Err(format!(
            "server answered {}: {}",
            answer.status, answer.body
        ))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse_payload;

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
