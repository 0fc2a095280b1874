//! Frames held back for a member whose recovery fetch is in flight count against its
//! outbound cap: a member whose fetch never returns, in a busy room, is closed 1008 "slow
//! consumer" (and its held frames freed) rather than holding the room's traffic forever.

use std::time::{Duration, Instant, UNIX_EPOCH};

use super::publish::OwnedTarget;
use super::remote::RemoteMessage;
use super::*;
use crate::protocol::CloseCode;

fn now() -> Now {
    Now {
        wall: UNIX_EPOCH + Duration::from_secs(1_795_737_599),
        mono: Instant::now(),
    }
}

/// A clustered hub whose member 1 joined room `r` with `since` and awaits its fetch.
fn recovering_member(cap: usize) -> (Hub, Outbox) {
    let mut hub = Hub::new(HubConfig {
        rate_limit_enabled: false,
        max_held_bytes: cap,
        ..HubConfig::default()
    });
    hub.set_bus(true);
    let mut out = Outbox::default();
    let conn = ConnId::new(1, 1);
    hub.connect(conn, "alice", now(), &mut out);
    let join = r#"{"type":"join","room":"r","since":{"offset":1,"epoch":"gone"}}"#;
    hub.on_text(conn, join, now(), &mut out);
    assert_eq!(out.fetches.len(), 1, "the join waits for Redis");
    // The room's position, which the join asked the bus for (`learn_position`): e:1.
    let since = super::request::Since {
        offset: 0,
        epoch: String::new(),
    };
    let fetched = super::remote::Fetched {
        epoch: "e".into(),
        last: 1,
        entries: Vec::new(),
    };
    hub.finish_catch_up("r", &since, Some(fetched), &mut out);
    out.sends.clear();
    (hub, out)
}

fn message(offset: u64, pad: usize) -> RemoteMessage {
    RemoteMessage {
        kind: "chat".into(),
        target: OwnedTarget::Room("r".into()),
        sender: "bob".into(),
        timestamp: "2026-11-26T09:00:00.000Z".into(),
        at_ms: 0,
        position: Some((offset, "e".into())),
        payload: format!(r#""{}""#, "x".repeat(pad)),
    }
}

#[test]
fn held_frames_count_against_the_outbound_cap() {
    let (mut hub, mut out) = recovering_member(64 * 1024);
    for offset in 2..10 {
        hub.on_remote(&message(offset, 1024), &mut out);
    }
    assert!(out.closes.is_empty(), "8 KiB held is under the cap");
    for offset in 10..200 {
        hub.on_remote(&message(offset, 1024), &mut out);
    }
    let closes: Vec<_> = out
        .closes
        .iter()
        .map(|c| (c.to, c.code, c.reason))
        .collect();
    assert_eq!(
        closes,
        [(
            ConnId::new(1, 1),
            CloseCode::POLICY_VIOLATION,
            "slow consumer"
        )]
    );
    assert!(hub.recovering.is_empty(), "its held frames are freed");
}
