//! Graceful shutdown of the real `wsloop serve` binary: spawn it, connect clients, send
//! SIGTERM (or SIGINT). Every client gets close 1001 "server shutting down" after whatever
//! was already queued for it, `/readyz` and new upgrades get 503 while draining, and the
//! process exits 0 once every client answered, or at the drain timeout, or at once on a
//! second signal.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::guard::{Served, assert_status, expect_welcome, open_with, read_until_close};
use common::{Client, Request, SETTLE};

/// Reads up to the server's close and asserts it is 1001 "server shutting down".
fn expect_going_away(client: &mut Client) {
    let (messages, code, reason) = read_until_close(client);
    assert!(messages.is_empty(), "unexpected messages: {messages:?}");
    assert_eq!(
        (code, reason.as_str()),
        (Some(1001), "server shutting down")
    );
}

/// Two `/echo` and two `/ws` clients, each known to be fully open.
fn four_clients(served: &Served) -> Vec<Client> {
    let mut clients = Vec::new();
    for n in 0..2 {
        let mut echo = served.connect();
        echo.upgrade("/echo");
        echo.send_text(&format!("hello {n}"));
        echo.expect_text(&format!("hello {n}"));
        clients.push(echo);
        let mut hub = open_with(served.addr, &format!("/ws?user_id=user-{n}"), &[]);
        assert_eq!(expect_welcome(&mut hub), format!("user-{n}"));
        clients.push(hub);
    }
    clients
}

#[test]
fn sigterm_closes_every_client_with_1001_turns_readyz_503_and_exits_0() {
    let drain = Duration::from_secs(20);
    let mut served = Served::start(&["--drain-timeout", "20s"], &[]);
    let mut clients = four_clients(&served);
    assert_eq!(served.request(&Request::get("/readyz")).status, 200);

    let signalled = Instant::now();
    served.signal("TERM");
    for client in &mut clients {
        expect_going_away(client);
    }
    // Nobody has answered yet, so the server is still draining.
    let ready = served.request(&Request::get("/readyz"));
    assert_status(&ready, 503, "draining");
    assert!(ready.header("Retry-After").is_some(), "{ready:?}");
    let upgrade = served.request(&Request::upgrade("/echo"));
    assert_status(&upgrade, 503, "server shutting down");
    assert_eq!(served.request(&Request::get("/healthz")).status, 200);
    assert!(served.running(), "exited before the clients answered");

    for mut client in clients {
        client.send_close(1001, "");
        client.expect_eof();
    }
    let status = served.wait_exit(drain);
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        served.log()
    );
    assert!(took < drain, "exit took {took:?}, drain timeout {drain:?}");
    let log = served.log();
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("shutdown complete"), "{log}");
}

#[test]
fn clients_that_never_answer_are_dropped_at_the_drain_timeout_and_exit_is_0() {
    let drain = Duration::from_secs(2);
    let mut served = Served::start(&["--drain-timeout", "2s", "--close-timeout", "60s"], &[]);
    let mut clients = four_clients(&served);
    let signalled = Instant::now();
    served.signal("TERM");
    for client in &mut clients {
        expect_going_away(client);
    }
    let status = served.wait_exit(drain + Duration::from_secs(10));
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        served.log()
    );
    assert!(
        took >= drain - Duration::from_millis(200),
        "exited after {took:?}, before the {drain:?} drain timeout"
    );
    for mut client in clients {
        client.expect_eof();
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut served = Served::start(&["--drain-timeout", "60s", "--close-timeout", "60s"], &[]);
    let mut clients = four_clients(&served);
    served.signal("TERM");
    for client in &mut clients {
        expect_going_away(client);
    }
    thread::sleep(Duration::from_millis(200));
    assert!(served.running(), "the drain waits for the silent clients");
    let second = Instant::now();
    served.signal("TERM");
    let status = served.wait_exit(Duration::from_secs(10));
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "second signal took {:?}",
        second.elapsed()
    );
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        served.log()
    );
    assert!(served.log().contains("again"), "{}", served.log());
}

#[test]
fn sigint_drains_like_sigterm() {
    let mut served = Served::start(&["--drain-timeout", "20s"], &[]);
    let mut clients = four_clients(&served);
    served.signal("INT");
    for client in &mut clients {
        expect_going_away(client);
    }
    assert_eq!(served.request(&Request::get("/readyz")).status, 503);
    for mut client in clients {
        client.send_close(1001, "");
        client.expect_eof();
    }
    let status = served.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        served.log()
    );
    assert!(served.log().contains("SIGINT"), "{}", served.log());
}

// "Nothing already queued for a client is dropped before its close frame": echoes the
// server owes a client that has not read them yet all arrive, intact and in order, and only
// then the 1001.
#[test]
fn echoes_queued_before_sigterm_arrive_before_the_close() {
    const COUNT: usize = 12;
    const SIZE: usize = 64 * 1024;
    let mut served = Served::start(&["--drain-timeout", "20s"], &[]);
    let mut client = served.connect();
    client.upgrade("/echo");
    for n in 0..COUNT {
        client.send_binary(&vec![n as u8; SIZE]);
    }
    // Wait until the server has read them all (and so queued every echo).
    let deadline = Instant::now() + SETTLE;
    loop {
        let stats = served.request(&Request::get("/stats"));
        let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
        if stats["messages_received"] == COUNT {
            break;
        }
        assert!(Instant::now() < deadline, "echoes never queued: {stats}");
        thread::sleep(Duration::from_millis(20));
    }
    served.signal("TERM");
    for n in 0..COUNT {
        client.expect_binary(&vec![n as u8; SIZE]);
    }
    expect_going_away(&mut client);
    client.send_close(1001, "");
    client.expect_eof();
    let status = served.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        served.log()
    );
}
