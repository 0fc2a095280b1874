//! JWT auth end to end on the real binary: `wsloop token` mints what `wsloop serve --auth jwt`
//! accepts (from `?token=` or `Authorization: Bearer`, the token's user winning over
//! `?user_id=`), and the debug log of a session full of tokens contains none of them.

mod common;

use std::time::Duration;

use common::Request;
use common::guard::{
    Served, assert_status, expect_welcome, fixture, fixture_path, mint_at, open_with, run_wsloop,
    sign_hs256, valid_claims,
};

const SECRET: &str = "guard-binary-secret-5b1d0e";

/// `wsloop token ARGS` → the token it prints.
fn token(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut full = vec!["token"];
    full.extend_from_slice(args);
    let finished = run_wsloop(&full, env);
    finished.assert_success();
    let token = finished.stdout.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {token:?}");
    assert_eq!(
        finished.stdout.lines().count(),
        1,
        "one line: {:?}",
        finished.stdout
    );
    token
}

/// Asserts a `/ws` upgrade with `target` and `headers` is welcomed as `user`.
fn welcomed_as(served: &Served, target: &str, headers: &[(&str, &str)], user: &str) {
    let mut client = open_with(served.addr, target, headers);
    assert_eq!(expect_welcome(&mut client), user, "{target} {headers:?}");
    client.close_cleanly();
}

#[test]
fn token_command_mints_what_the_server_accepts() {
    let served = Served::start(&["--auth", "jwt", "--jwt-secret", SECRET], &[]);
    let minted = token(&["--user", "42", "--secret", SECRET], &[]);
    welcomed_as(&served, &format!("/ws?token={minted}"), &[], "42");
    let bearer = format!("Bearer {minted}");
    welcomed_as(&served, "/ws", &[("Authorization", &bearer)], "42");
    // The token's user wins over ?user_id=.
    welcomed_as(&served, &format!("/ws?user_id=7&token={minted}"), &[], "42");
    welcomed_as(
        &served,
        "/ws?user_id=7",
        &[("Authorization", &bearer)],
        "42",
    );

    // The secret can come from the environment too, and --ttl is honoured.
    let from_env = token(
        &["--user", "43", "--ttl", "2h"],
        &[("WSLOOP_AUTH_SECRET", SECRET)],
    );
    welcomed_as(&served, &format!("/ws?token={from_env}"), &[], "43");

    let missing = served.request(&Request::upgrade("/ws?user_id=42"));
    assert_status(&missing, 401, "missing token");
    let other = token(&["--user", "42", "--secret", "not-the-server-secret"], &[]);
    let refused = served.request(&Request::upgrade(&format!("/ws?token={other}")));
    assert_status(&refused, 401, "invalid token signature");
}

#[test]
fn token_command_refuses_bad_input() {
    for (args, says) in [
        (&["token", "--user", "42"][..], "--secret"),
        (
            &["token", "--user", "42", "--secret", "s", "--ttl", "forever"],
            "--ttl",
        ),
        (
            &["token", "--user", "42", "--alg", "RS256"],
            "--private-key",
        ),
    ] {
        let finished = run_wsloop(args, &[]);
        let status = finished.status.expect("exited");
        assert!(!status.success(), "{args:?}: {status:?}");
        assert!(
            finished.stderr.contains(says),
            "{args:?}: {}",
            finished.stderr
        );
        assert!(
            finished.stdout.is_empty(),
            "{args:?} printed {:?}",
            finished.stdout
        );
    }
}

#[test]
fn rs256_server_accepts_minted_rs256_tokens_and_refuses_hs256_confusion() {
    let public = fixture_path("rs256-public.pem");
    let private = fixture_path("rs256-private.pem");
    let args = ["--auth", "jwt", "--jwt-alg", "RS256", "--jwt-public-key"];
    let mut full = args.to_vec();
    full.push(public.to_str().unwrap());
    let served = Served::start(&full, &[]);
    let minted = token(
        &[
            "--user",
            "rsa-7",
            "--alg",
            "RS256",
            "--private-key",
            private.to_str().unwrap(),
        ],
        &[],
    );
    welcomed_as(&served, &format!("/ws?token={minted}"), &[], "rsa-7");
    let confused = sign_hs256(&valid_claims("rsa-7"), &fixture("rs256-public.pem"));
    let refused = served.request(&Request::upgrade(&format!("/ws?token={confused}")));
    assert_status(&refused, 401, "token algorithm not accepted");
}

#[test]
fn auth_none_warns_at_startup() {
    let mut served = Served::start(&[], &[]);
    served.signal("TERM");
    served.wait_exit(Duration::from_secs(10));
    let log = served.log();
    assert!(
        log.contains("WARN") && log.contains("auth.mode = \"none\""),
        "{log}"
    );
}

// The token never appears in logs: a debug-level session with tokens in queries (accepted,
// refused, on every endpoint) and in `Authorization` headers, then the whole log searched
// for each token and for each of its three parts.
#[test]
fn debug_log_of_a_session_with_tokens_contains_none() {
    let mut served = Served::start(
        &[
            "--auth",
            "jwt",
            "--jwt-secret",
            SECRET,
            "--log-level",
            "debug",
        ],
        &[("RUST_LOG", "debug")],
    );
    let good = token(&["--user", "alice", "--secret", SECRET], &[]);
    let bearer_only = token(&["--user", "bob", "--secret", SECRET], &[]);
    let expired = mint_at(
        "HS256",
        SECRET.as_bytes(),
        "carol",
        None,
        std::time::SystemTime::now() - Duration::from_secs(7200),
        Duration::from_secs(3600),
    );
    let wrong_key = token(&["--user", "dave", "--secret", "another-secret"], &[]);
    let tokens = [&good, &bearer_only, &expired, &wrong_key];

    welcomed_as(
        &served,
        &format!("/ws?token={good}&user_id=x"),
        &[],
        "alice",
    );
    let bearer = format!("Bearer {bearer_only}");
    welcomed_as(&served, "/ws", &[("Authorization", &bearer)], "bob");
    let mut echo = open_with(served.addr, &format!("/echo?token={good}"), &[]);
    echo.send_text("hello");
    echo.expect_text("hello");
    echo.close_cleanly();
    for (target, status) in [
        (format!("/ws?token={expired}"), 401),
        (format!("/ws?user_id=1&token={wrong_key}"), 401),
        (format!("/nowhere?token={good}"), 404),
    ] {
        let response = served.request(&Request::upgrade(&target));
        assert_eq!(response.status, status, "{target}: {response:?}");
    }
    let refused_bearer = format!("Bearer {wrong_key}");
    let response = served.request(&Request::upgrade("/ws").set("Authorization", &refused_bearer));
    assert_eq!(response.status, 401);
    let plain = served.request(&Request::get(&format!("/healthz?token={good}")));
    assert_eq!(plain.status, 200);

    served.signal("TERM");
    assert!(served.wait_exit(Duration::from_secs(20)).success());
    let log = served.log();
    // The session was logged at debug level, with the queries redacted...
    assert!(log.contains("DEBUG"), "debug logging was on:\n{log}");
    assert!(
        log.contains("token=***"),
        "redacted targets are logged:\n{log}"
    );
    // ... and no token, nor any part of one, nor the secret, is in it.
    for token in tokens {
        for part in token.split('.').chain([token.as_str()]) {
            assert!(
                part.len() < 16 || !log.contains(part),
                "token part {part} found in the log:\n{log}"
            );
        }
    }
    assert!(!log.contains(SECRET), "the secret is in the log");
}
