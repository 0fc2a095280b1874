//! Mass disconnects over loopback: the work is linear in the members and the loop's stack
//! does not grow with them.
//!
//! - A graceful shutdown closes every member of a room in one go: nobody is told, member by
//!   member, about each of the others leaving (N² presence frames at N members).
//! - A cascade of slow consumers (each close sends presence that pushes the next member over
//!   its cap) is settled by one loop on a small stack: a close made while the hub's output is
//!   being applied is queued, not recursed into.

mod common;

use common::TestServer;
use common::hub::{HubClient, join_members};
use serde_json::json;
use wsloop::protocol::OpCode;

/// Members of the room in the drain test.
const DRAIN_MEMBERS: usize = 200;
/// Members of the room in the cascade test.
const CASCADE_MEMBERS: usize = 1_000;
/// The unsent-bytes cap of the cascade test.
const CAP: usize = 32 * 1024;
/// The loop's stack in the cascade test: far less than a recursion per member needs.
const SMALL_STACK: usize = 512 * 1024;

/// Reads up to the server's close frame; returns its code and how many `leave` presence
/// frames came before it.
fn leaves_before_close(member: &mut HubClient) -> (Option<u16>, usize) {
    let mut leaves = 0;
    loop {
        let frame = member.next_frame().expect("a close frame before EOF");
        if frame.opcode == OpCode::Close {
            return (frame.close_code(), leaves);
        }
        let text = String::from_utf8(frame.payload).expect("UTF-8");
        if text.contains(r#""type":"presence""#) && text.contains(r#""action":"leave""#) {
            leaves += 1;
        }
    }
}

#[test]
fn a_drain_does_not_tell_each_member_about_every_other_leaving() {
    let mut server = TestServer::start_with(|c| c.hub.rate_limit_enabled = false);
    let mut members = join_members(&server, DRAIN_MEMBERS);
    server.shutdown();
    let mut leaves = 0;
    for member in &mut members {
        let (code, seen) = leaves_before_close(member);
        assert_eq!(code, Some(1001), "{}", member.user_id);
        leaves += seen;
    }
    // One presence frame per member at most; one per pair would be ~20,000.
    assert!(
        leaves <= DRAIN_MEMBERS,
        "{leaves} leave presence frames for {DRAIN_MEMBERS} members"
    );
    for member in members {
        member.vanish();
    }
    server.wait_exit(common::SETTLE * 2).expect("clean exit");
}

#[test]
fn a_cascade_of_slow_consumers_settles_on_a_small_stack() {
    let server = TestServer::start_on_stack(SMALL_STACK, |c| {
        c.hub.rate_limit_enabled = false;
        c.max_outbound_bytes = CAP;
    });
    let mut members = join_members(&server, CASCADE_MEMBERS);
    // Calibrate: the length of a delivery with an empty pad.
    members[0].chat(Some("all"), json!({"pad": ""}), None);
    let base = members
        .iter_mut()
        .map(|m| m.next_skipping(&["presence"]).to_string().len())
        .max()
        .expect("members");
    // A delivery whose frame (4-byte header) leaves 8 bytes under the cap: every member
    // queues it, and the next frame to anyone (the sender's ack, then each presence)
    // pushes that member over the cap, one after the other.
    let pad = "x".repeat(CAP - 8 - 4 - base);
    members[0].chat(Some("all"), json!({"pad": pad}), Some(json!(1)));
    for member in &mut members {
        let (code, _) = leaves_before_close(member);
        assert_eq!(code, Some(1008), "{}", member.user_id);
    }
    let stats = server.stats();
    assert_eq!(
        stats["slow_consumer_closes"],
        json!(CASCADE_MEMBERS),
        "{stats}"
    );
    for member in members {
        member.vanish();
    }
}
