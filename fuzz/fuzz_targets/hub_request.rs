//! Fuzz target: the hub's JSON request decoder (`/ws`) and the publish API's body decoder.
//!
//! Oracles: arbitrary bytes never panic either decoder; and a request built from structured
//! input, serialized with serde_json, decodes back to the same type, room, recipient, id
//! and byte-identical payload (valid requests round-trip).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wsloop::hub::HubConfig;
use wsloop::hub::publish::decode_publish;
use wsloop::hub::request::{Request, decode};

/// A valid request to round-trip.
#[derive(Debug, Arbitrary)]
struct Built {
    kind: u8,
    room: String,
    recipient: String,
    id: Option<u32>,
    payload: Vec<u8>,
    raw: Vec<u8>,
}

fn payload_of(bytes: &[u8]) -> Value {
    match bytes.first().copied().unwrap_or(0) % 4 {
        0 => Value::Null,
        1 => json!(String::from_utf8_lossy(bytes)),
        2 => json!(bytes.iter().map(|b| u64::from(*b)).collect::<Vec<_>>()),
        _ => json!({ "k": String::from_utf8_lossy(bytes), "n": bytes.len() }),
    }
}

fuzz_target!(|built: Built| {
    // Arbitrary input: no panic, whatever it is.
    if let Ok(text) = std::str::from_utf8(&built.raw) {
        let _ = decode(text);
    }
    let limits = HubConfig {
        max_message_bytes: 1024,
        ..HubConfig::default()
    };
    let _ = decode_publish(&built.raw, &limits);

    // A valid request round-trips.
    let payload = payload_of(&built.payload);
    let mut request = match built.kind % 4 {
        0 => json!({"type": "join", "room": built.room}),
        1 => json!({"type": "leave", "room": built.room}),
        2 => json!({"type": "chat", "room": built.room, "payload": payload}),
        _ => json!({"type": "private", "recipient_id": built.recipient, "payload": payload}),
    };
    if let Some(id) = built.id {
        request["id"] = json!(id);
    }
    let text = request.to_string();
    let envelope = decode(&text).unwrap_or_else(|e| panic!("valid request refused: {text}: {e:?}"));
    assert_eq!(envelope.id.map(|v| v.get().to_owned()), built.id.map(|i| i.to_string()));
    let payload_text = payload.to_string();
    match (built.kind % 4, envelope.request) {
        (0, Request::Join { room, since }) => assert!(room == built.room && since.is_none()),
        (1, Request::Leave { room }) => assert_eq!(room, built.room),
        (2, Request::Chat { room, payload }) => {
            assert_eq!(room.as_deref(), Some(built.room.as_str()));
            assert_eq!(payload.get(), payload_text, "payload passes through untouched");
        }
        (3, Request::Private { recipient, payload }) => {
            assert_eq!(recipient, built.recipient);
            assert_eq!(payload.get(), payload_text);
        }
        (kind, other) => panic!("kind {kind} decoded as {other:?}"),
    }
});
