//! History memory is bounded in bytes, expires on a timer, and joins do not create it.

use super::*;
use crate::hub::{Hub, HubConfig, Now, Outbox};
use crate::id::ConnId;

fn frame(len: usize) -> SharedFrame {
    SharedFrame::from(vec![b'x'; len])
}

fn write(h: &mut History, room: &str, at_ms: u64, len: usize) {
    let (offset, epoch) = h.next_position(room);
    let entry = Entry {
        offset,
        at_ms,
        frame: frame(len),
    };
    h.record(room, &epoch, entry);
}

#[test]
fn history_is_bounded_in_bytes() {
    let mut h = History::new(HistoryConfig {
        max_bytes: 10 * 1024,
        ..HistoryConfig::default()
    });
    for i in 0..100 {
        write(&mut h, &format!("room-{}", i % 20), 0, 1024);
    }
    assert!(h.bytes() <= 10 * 1024, "{} bytes kept", h.bytes());
    assert!(h.position("room-19").is_some(), "the latest room is kept");
    for _ in 0..30 {
        write(&mut h, "big", 0, 1024);
    }
    assert!(h.bytes() <= 10 * 1024, "{} bytes kept", h.bytes());
}

#[test]
fn expiry_frees_memory_without_a_read() {
    let ttl = HistoryConfig::default().ttl;
    let ttl_ms = u64::try_from(ttl.as_millis()).expect("ms");
    let mut h = History::new(HistoryConfig::default());
    write(&mut h, "old", 1_000, 100);
    write(&mut h, "new", 1_000 + ttl_ms, 100);
    h.expire(2_000 + ttl_ms);
    assert_eq!((h.room_count(), h.bytes()), (1, 100));
    assert!(h.position("old").is_none());
}

#[test]
fn made_up_joins_do_not_evict_real_history() {
    let mut hub = Hub::new(HubConfig {
        rate_limit_enabled: false,
        history: HistoryConfig {
            max_rooms: 10,
            ..HistoryConfig::default()
        },
        ..HubConfig::default()
    });
    let now = Now::current();
    let mut out = Outbox::default();
    let conn = ConnId::new(1, 1);
    hub.connect(conn, "alice", now, &mut out);
    for room in ["r1", "r2", "r3"] {
        hub.on_text(
            conn,
            &format!(r#"{{"type":"join","room":"{room}"}}"#),
            now,
            &mut out,
        );
        let chat = format!(r#"{{"type":"chat","room":"{room}","payload":1}}"#);
        hub.on_text(conn, &chat, now, &mut out);
    }
    for i in 0..10_000 {
        let room = format!("made-up-{i}");
        hub.on_text(
            conn,
            &format!(r#"{{"type":"join","room":"{room}"}}"#),
            now,
            &mut out,
        );
        hub.on_text(
            conn,
            &format!(r#"{{"type":"leave","room":"{room}"}}"#),
            now,
            &mut out,
        );
        out.sends.clear();
    }
    for room in ["r1", "r2", "r3"] {
        assert_eq!(
            hub.history.position(room).map(|(offset, _)| offset),
            Some(1),
            "{room} keeps its history"
        );
    }
    assert!(hub.history.room_count() <= 10);
}
