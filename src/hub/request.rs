//! Client requests on `/ws`: one JSON object per text frame, decoded without copying.
//!
//! Fields are first captured as raw JSON (`&RawValue`) and only then checked one by one,
//! so every problem gets a precise error ("field `room` must be a string") and `payload`
//! passes through byte for byte, never re-serialized. Unknown fields are ignored, so
//! clients can add their own.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{ErrorCode, HubError};

/// Every field any request may carry, still as raw JSON.
#[derive(Debug, Default, Deserialize)]
struct RawRequest<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    room: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    recipient_id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    since: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    token: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    feed: Option<&'a RawValue>,
}

/// Keeps a present field as raw JSON, `null` included (plain `Option` would turn `null`
/// into `None`, and `"payload": null` is a valid payload).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Where a client last was in a room's history (`join` with `since`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Since {
    /// The offset of the last message the client has.
    pub offset: u64,
    /// The history epoch that offset belongs to.
    pub epoch: String,
}

/// A decoded request.
#[derive(Debug, Clone)]
pub enum Request<'a> {
    /// `{"type":"join","room":…}`, optionally with `"since":{"offset":N,"epoch":"…"}`.
    Join {
        /// The room.
        room: Cow<'a, str>,
        /// Recover history after this position.
        since: Option<Since>,
    },
    /// `{"type":"leave","room":…}`.
    Leave {
        /// The room.
        room: Cow<'a, str>,
    },
    /// `{"type":"chat","payload":…}` to everyone, or with `"room"` to a room's members.
    Chat {
        /// The room, or `None` for a global broadcast.
        room: Option<Cow<'a, str>>,
        /// Any JSON value, passed through untouched.
        payload: &'a RawValue,
    },
    /// `{"type":"private","recipient_id":…,"payload":…}` to every connection of a user.
    Private {
        /// The user to deliver to.
        recipient: Cow<'a, str>,
        /// Any JSON value, passed through untouched.
        payload: &'a RawValue,
    },
    /// `{"type":"refresh","token":…}`: a fresh token for a long-lived connection.
    Refresh {
        /// The new token.
        token: Cow<'a, str>,
    },
    /// `{"type":"sync","feed":"private"|"broadcast"}`, optionally with `since`: the feed's
    /// position, and with `since` the messages missed after it (as `join` for a room).
    Sync {
        /// `private` (the user's own private messages) or `broadcast`.
        feed: Cow<'a, str>,
        /// Recover the feed's messages after this position.
        since: Option<Since>,
    },
}

/// A request with the client's optional correlation id.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The client's `id`, echoed verbatim in the reply.
    pub id: Option<&'a RawValue>,
    /// The request.
    pub request: Request<'a>,
}

/// A request that could not be decoded, with the id to echo if one was readable.
#[derive(Debug, Clone)]
pub struct Refused<'a> {
    /// The client's `id`, if the object had a valid one.
    pub id: Option<&'a RawValue>,
    /// What was wrong.
    pub error: HubError,
}

/// Decodes one request from the text of a frame.
pub fn decode(text: &str) -> Result<Envelope<'_>, Refused<'_>> {
    if !text.trim_start().starts_with('{') {
        let error = HubError::new(ErrorCode::InvalidJson, "a request must be a JSON object");
        return Err(Refused { id: None, error });
    }
    let raw: RawRequest<'_> = serde_json::from_str(text).map_err(|e| Refused {
        id: None,
        error: HubError::new(ErrorCode::InvalidJson, json_error_message(&e)),
    })?;
    let id = raw.id.filter(|v| is_valid_id(v));
    let refuse = |error: HubError| Refused { id, error };
    if raw.id.is_some() && id.is_none() {
        return Err(refuse(field_error("id", "must be a string or a number")));
    }
    let kind = required_str(raw.kind, "type").map_err(refuse)?;
    let request = match kind.as_ref() {
        "join" => Request::Join {
            room: required_str(raw.room, "room").map_err(refuse)?,
            since: optional_since(raw.since).map_err(refuse)?,
        },
        "leave" => Request::Leave {
            room: required_str(raw.room, "room").map_err(refuse)?,
        },
        "chat" => Request::Chat {
            room: optional_str(raw.room, "room").map_err(refuse)?,
            payload: required(raw.payload, "payload").map_err(refuse)?,
        },
        "private" => Request::Private {
            recipient: required_str(raw.recipient_id, "recipient_id").map_err(refuse)?,
            payload: required(raw.payload, "payload").map_err(refuse)?,
        },
        "refresh" => Request::Refresh {
            token: required_str(raw.token, "token").map_err(refuse)?,
        },
        "sync" => Request::Sync {
            feed: required_str(raw.feed, "feed").map_err(refuse)?,
            since: optional_since(raw.since).map_err(refuse)?,
        },
        other => {
            let shown: String = other.chars().take(32).collect();
            return Err(refuse(HubError::new(
                ErrorCode::UnknownType,
                format!("unknown type `{shown}`"),
            )));
        }
    };
    Ok(Envelope { id, request })
}

fn json_error_message(e: &serde_json::Error) -> String {
    if e.is_data() {
        format!("invalid request: {e}")
    } else {
        format!("invalid JSON: {e}")
    }
}

/// An `id` may be a string or a number (JSON-RPC style).
fn is_valid_id(v: &RawValue) -> bool {
    matches!(v.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9'))
}

fn field_error(name: &str, problem: &str) -> HubError {
    HubError::new(ErrorCode::InvalidField, format!("field `{name}` {problem}"))
}

fn required<'a>(value: Option<&'a RawValue>, name: &str) -> Result<&'a RawValue, HubError> {
    value.ok_or_else(|| field_error(name, "is required"))
}

fn required_str<'a>(value: Option<&'a RawValue>, name: &str) -> Result<Cow<'a, str>, HubError> {
    as_str(required(value, name)?, name)
}

fn optional_str<'a>(
    value: Option<&'a RawValue>,
    name: &str,
) -> Result<Option<Cow<'a, str>>, HubError> {
    match value {
        None => Ok(None),
        Some(v) if v.get() == "null" => Ok(None),
        Some(v) => as_str(v, name).map(Some),
    }
}

fn as_str<'a>(value: &'a RawValue, name: &str) -> Result<Cow<'a, str>, HubError> {
    Cow::<'a, str>::deserialize(value).map_err(|_| field_error(name, "must be a string"))
}

fn optional_since(value: Option<&RawValue>) -> Result<Option<Since>, HubError> {
    match value {
        None => Ok(None),
        Some(v) if v.get() == "null" => Ok(None),
        Some(v) => serde_json::from_str(v.get())
            .map(Some)
            .map_err(|_| field_error("since", "must be {\"offset\": integer, \"epoch\": string}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Envelope<'_> {
        decode(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    fn err(text: &str) -> (ErrorCode, String) {
        let refused = decode(text).expect_err(text);
        (refused.error.code, refused.error.message)
    }

    #[test]
    fn each_request_type() {
        let join = ok(r#"{"type":"join","room":"lobby"}"#).request;
        assert!(matches!(join, Request::Join { room, since: None } if room == "lobby"));
        let leave = ok(r#"{"type":"leave","room":"lobby"}"#).request;
        assert!(matches!(leave, Request::Leave { room } if room == "lobby"));
        let chat = ok(r#"{"type":"chat","payload":{"a":[1, 2]}}"#);
        let Request::Chat {
            room: None,
            payload,
        } = chat.request
        else {
            panic!()
        };
        assert_eq!(
            payload.get(),
            r#"{"a":[1, 2]}"#,
            "payload untouched, spacing included"
        );
        let room_chat = ok(r#"{"type":"chat","room":"r","payload":"hi"}"#);
        assert!(matches!(
            room_chat.request,
            Request::Chat { room: Some(_), .. }
        ));
        let private = ok(r#"{"type":"private","recipient_id":"42","payload":null}"#);
        let Request::Private { recipient, payload } = private.request else {
            panic!()
        };
        assert_eq!((recipient.as_ref(), payload.get()), ("42", "null"));
    }

    #[test]
    fn id_is_kept_verbatim() {
        assert_eq!(
            ok(r#"{"type":"leave","room":"r","id":"a-1"}"#)
                .id
                .map(RawValue::get),
            Some(r#""a-1""#)
        );
        assert_eq!(
            ok(r#"{"type":"leave","room":"r","id":17}"#)
                .id
                .map(RawValue::get),
            Some("17")
        );
        assert_eq!(
            err(r#"{"type":"leave","room":"r","id":{"x":1}}"#).0,
            ErrorCode::InvalidField
        );
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let Request::Join { room, .. } = ok(r#"{"type":"join","room":"lob\u0062y"}"#).request
        else {
            panic!()
        };
        assert_eq!(room, "lobby");
    }

    #[test]
    fn since_is_parsed() {
        let e = ok(r#"{"type":"join","room":"r","since":{"offset":5,"epoch":"e1"}}"#);
        let Request::Join { since, .. } = e.request else {
            panic!()
        };
        assert_eq!(
            since,
            Some(Since {
                offset: 5,
                epoch: "e1".into()
            })
        );
        assert_eq!(
            err(r#"{"type":"join","room":"r","since":5}"#).0,
            ErrorCode::InvalidField
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(err("not json").0, ErrorCode::InvalidJson);
        assert_eq!(
            err("[1,2]"),
            (
                ErrorCode::InvalidJson,
                "a request must be a JSON object".into()
            )
        );
        assert_eq!(
            err(r#"{"room":"r"}"#),
            (ErrorCode::InvalidField, "field `type` is required".into())
        );
        assert_eq!(
            err(r#"{"type":5}"#),
            (
                ErrorCode::InvalidField,
                "field `type` must be a string".into()
            )
        );
        assert_eq!(
            err(r#"{"type":"dance"}"#),
            (ErrorCode::UnknownType, "unknown type `dance`".into())
        );
        assert_eq!(
            err(r#"{"type":"join"}"#),
            (ErrorCode::InvalidField, "field `room` is required".into())
        );
        assert_eq!(
            err(r#"{"type":"join","room":1}"#),
            (
                ErrorCode::InvalidField,
                "field `room` must be a string".into()
            )
        );
        assert_eq!(
            err(r#"{"type":"chat"}"#),
            (
                ErrorCode::InvalidField,
                "field `payload` is required".into()
            )
        );
        assert_eq!(
            err(r#"{"type":"private","payload":1}"#).1,
            "field `recipient_id` is required"
        );
    }

    #[test]
    fn refusal_keeps_a_valid_id() {
        let refused = decode(r#"{"type":"join","id":9}"#).unwrap_err();
        assert_eq!(refused.id.map(RawValue::get), Some("9"));
    }
}
