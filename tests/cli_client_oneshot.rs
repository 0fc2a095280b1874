//! `wsloop client` in scripts, as README shows it: `printf … | wsloop client URL` prints the
//! replies to every line before it exits, `--wait-replies`/`--timeout` make a one-shot mode,
//! the exit codes are the documented ones, and a token in the URL never reaches stderr.
//!
//! The real binary against a real `wsloop serve` on a free loopback port.

mod common;

use common::guard::{Finished, Served, run_wsloop, run_wsloop_stdin};

/// `wsloop client ARGS` fed `input` on stdin.
fn client(args: &[&str], input: &str) -> Finished {
    let mut full = vec!["client"];
    full.extend_from_slice(args);
    run_wsloop_stdin(&full, &[], input)
}

fn exit_code(finished: &Finished) -> Option<i32> {
    finished.status.and_then(|s| s.code())
}

/// Eight joins, each with its own id.
fn joins() -> String {
    (1..=8)
        .map(|i| format!("{{\"type\":\"join\",\"room\":\"r{i}\",\"id\":{i}}}\n"))
        .collect()
}

#[test]
fn end_of_stdin_waits_for_the_replies_to_every_line() {
    let server = Served::start(&["--rate-limit", "off"], &[]);
    let url = format!("ws://{}/ws?user_id=v", server.addr);
    // The server answers a ping at once but queues the hub's replies after the input is
    // read: a client that stops at its pong loses them. Several runs, as it was a race.
    for run in 0..3 {
        let done = client(&[&url], &joins());
        assert_eq!(exit_code(&done), Some(0), "run {run}: {}", done.stderr);
        let lines: Vec<&str> = done.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            9,
            "run {run}: welcome and 8 joined:\n{}",
            done.stdout
        );
        assert!(lines[0].contains("\"welcome\""), "{}", lines[0]);
        for (i, line) in lines[1..].iter().enumerate() {
            let id = format!("\"id\":{}", i + 1);
            assert!(line.contains("\"joined\"") && line.contains(&id), "{line}");
        }
    }
}

#[test]
fn wait_replies_is_a_one_shot_mode_and_timeout_exits_3() {
    let server = Served::start(&[], &[]);
    let url = format!("ws://{}/ws?user_id=w", server.addr);
    let join = "{\"type\":\"join\",\"room\":\"r1\",\"id\":1}\n";
    let done = client(&["--wait-replies", "2", &url], join);
    assert_eq!(exit_code(&done), Some(0), "{}", done.stderr);
    assert_eq!(done.stdout.lines().count(), 2, "{}", done.stdout);
    assert!(done.stdout.contains("\"joined\""), "{}", done.stdout);

    // Only two messages will ever come: the third is waited for until --timeout, which is
    // long enough for a debug server on a loaded machine to send the first two.
    let done = client(&["--wait-replies", "3", "--timeout", "2s", &url], join);
    assert_eq!(exit_code(&done), Some(3), "{}", done.stderr);
    assert!(
        done.stderr.contains("2 of 3 messages within --timeout"),
        "{}",
        done.stderr
    );
    assert_eq!(done.stdout.lines().count(), 2, "what came is printed");
}

#[test]
fn exit_codes_are_the_documented_ones() {
    let help = run_wsloop(&["client", "--help"], &[]);
    help.assert_success();
    for line in [
        "Exit status:",
        "  0  ",
        "  1  ",
        "  2  ",
        "  3  ",
        "--wait-replies",
    ] {
        assert!(
            help.stdout.contains(line),
            "--help lacks `{line}`:\n{}",
            help.stdout
        );
    }
    let bad_url = client(&["http//nowhere"], "");
    assert_eq!(exit_code(&bad_url), Some(2), "{}", bad_url.stderr);
    assert!(
        bad_url.stderr.contains("expected a ws:// URL"),
        "{}",
        bad_url.stderr
    );
    let bad_flag = client(&["--no-such-flag", "ws://127.0.0.1:1/"], "");
    assert_eq!(exit_code(&bad_flag), Some(2), "{}", bad_flag.stderr);

    let server = Served::start(&[], &[]);
    let refused = client(&[&format!("ws://{}/nowhere", server.addr)], "");
    assert_eq!(exit_code(&refused), Some(1), "{}", refused.stderr);
    assert!(refused.stderr.contains("404"), "{}", refused.stderr);
    let fine = client(&[&format!("ws://{}/echo", server.addr)], "hi\n");
    assert_eq!(exit_code(&fine), Some(0), "{}", fine.stderr);
    assert_eq!(fine.stdout, "hi\n");
}

#[test]
fn the_token_in_the_url_never_reaches_stderr() {
    let secret = "newcomer-test-secret";
    let server = Served::start(&["--auth", "jwt", "--jwt-secret", secret], &[]);
    let minted = run_wsloop(&["token", "--user", "42", "--secret", secret], &[]);
    minted.assert_success();
    let token = minted.stdout.trim();
    assert!(token.starts_with("eyJ"), "{token}");
    let url = format!("ws://{}/ws?token={token}", server.addr);
    let done = client(&["--wait-replies", "1", &url], "");
    assert_eq!(exit_code(&done), Some(0), "{}", done.stderr);
    assert!(
        done.stdout.contains("\"user_id\":\"42\""),
        "{}",
        done.stdout
    );
    assert!(
        done.stderr.contains("connected to ws://") && done.stderr.contains("token=***"),
        "{}",
        done.stderr
    );
    assert!(
        !done.stderr.contains(token),
        "token leaked: {}",
        done.stderr
    );
    // A refused token is not printed either.
    let bad = format!("ws://{}/ws?token={token}x", server.addr);
    let refused = client(&[&bad], "");
    assert_eq!(exit_code(&refused), Some(1), "{}", refused.stderr);
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    assert!(
        !refused.stderr.contains(token),
        "token leaked: {}",
        refused.stderr
    );
}
