//! What a newcomer sees when a command line or a configuration is wrong, from the real
//! binary: `wsloop serve --check` lists every problem (features off included) and exits 1,
//! `--print-config` refuses a configuration that would not start and hides every secret
//! (the password in `cluster.redis_url` too), sizes take units everywhere, secrets can come
//! from files, and each error names the form it expected.

mod common;

use common::guard::{Finished, Served, TempFile, run_wsloop};

fn code(finished: &Finished) -> Option<i32> {
    finished.status.and_then(|s| s.code())
}

/// Asserts exit status 1 and that stderr holds every one of `parts`.
fn refused_with(finished: &Finished, parts: &[&str]) {
    assert_eq!(code(finished), Some(1), "stderr:\n{}", finished.stderr);
    for part in parts {
        assert!(
            finished.stderr.contains(part),
            "stderr lacks `{part}`:\n{}",
            finished.stderr
        );
    }
}

#[test]
fn check_validates_everything_and_lists_every_problem() {
    let fine = run_wsloop(&["serve", "--check"], &[]);
    fine.assert_success();
    assert_eq!(fine.stdout, "configuration OK\n");
    // Compression and the rate limit are off: their values are checked anyway.
    let env = [
        ("WSLOOP_COMPRESSION_LEVEL", "12"),
        ("WSLOOP_RATE_LIMIT_ENABLED", "off"),
        ("WSLOOP_RATE_LIMIT_REFILL_PER_SEC", "-1"),
        ("WSLOOP_HUB_PING_INTERVAL", "2m"),
        ("WSLOOP_SERVER_HANDSHAKE_RATE_CAPACITY", "-5"),
    ];
    let bad = run_wsloop(&["serve", "--check", "--listen", "19108"], &env);
    refused_with(
        &bad,
        &[
            "would not start (5 problems)",
            "server.listen: `19108`: expected IP:PORT, e.g. 127.0.0.1:8080",
            "compression.level: 12 must be 0 to 9",
            "rate_limit.refill_per_sec",
            "hub.ping_interval: 2m must be less than hub.idle_timeout (1m)",
            "server.handshake_rate_capacity",
        ],
    );
    // The same configuration does not start either, and says why the same way.
    let start = run_wsloop(&["serve", "--listen", "19108"], &env[..1]);
    refused_with(
        &start,
        &["compression.level: 12 must be 0 to 9", "expected IP:PORT"],
    );
}

#[test]
fn print_config_fails_on_a_configuration_that_would_not_start() {
    let shown = run_wsloop(&["serve", "--print-config", "--listen", "nowhere"], &[]);
    refused_with(&shown, &["server.listen: `nowhere`: expected IP:PORT"]);
    assert!(
        shown.stdout.contains("[server]"),
        "still printed:\n{}",
        shown.stdout
    );
    run_wsloop(&["serve", "--print-config"], &[]).assert_success();
}

#[test]
fn the_redis_password_is_hidden_in_print_config_and_errors() {
    let url = "redis://:hunter2@10.0.0.1:6379/";
    let shown = run_wsloop(
        &["serve", "--print-config"],
        &[("WSLOOP_CLUSTER_REDIS_URL", url)],
    );
    shown.assert_success();
    assert!(
        shown
            .stdout
            .contains("redis_url = \"redis://:***@10.0.0.1:6379/\""),
        "{}",
        shown.stdout
    );
    assert!(!shown.stdout.contains("hunter2"), "{}", shown.stdout);
    let bad = run_wsloop(
        &["serve", "--check", "--redis-url", "tcp://u:hunter2@h/"],
        &[],
    );
    refused_with(
        &bad,
        &["cluster.redis_url: `tcp://u:***@h/`: expected redis://"],
    );
    assert!(!bad.stderr.contains("hunter2"), "{}", bad.stderr);
}

#[test]
fn secrets_can_come_from_files_instead_of_the_command_line() {
    let secret = TempFile::new("txt", "file-secret-42\n");
    let env = [("WSLOOP_AUTH_SECRET_FILE", secret.as_str())];
    let shown = run_wsloop(&["serve", "--print-config", "--auth", "jwt"], &env);
    shown.assert_success();
    assert!(
        shown.stdout.contains("secret = \"***\""),
        "{}",
        shown.stdout
    );
    assert!(!shown.stdout.contains("file-secret-42"), "{}", shown.stdout);
    let missing = run_wsloop(&["serve", "--check", "--auth", "jwt"], &[]);
    refused_with(
        &missing,
        &["auth.secret: auth.mode = \"jwt\" with HS256 needs a secret"],
    );
    let gone = [("WSLOOP_API_KEYS_FILE", "/nonexistent/wsloop-keys")];
    refused_with(
        &run_wsloop(&["serve", "--check"], &gone),
        &["api.keys_file: cannot read"],
    );
}

#[test]
fn sizes_take_units_and_help_shows_defaults_in_them() {
    let file = TempFile::new("toml", "[hub]\nmax_message = \"2MiB\"\nmax_frame = 65536\n");
    let shown = run_wsloop(
        &[
            "serve",
            "--print-config",
            "--config",
            file.as_str(),
            "--max-frame",
            "16k",
            "--max-request-bytes",
            "32KiB",
        ],
        &[("WSLOOP_HUB_MAX_OUTBOUND_BYTES", "512KiB")],
    );
    shown.assert_success();
    for line in [
        "max_frame = \"16KiB\"",
        "max_message = \"2MiB\"",
        "max_frame = \"64KiB\"",
        "max_request_bytes = \"32KiB\"",
        "max_outbound_bytes = \"512KiB\"",
    ] {
        assert!(
            shown.stdout.contains(line),
            "lacks {line}:\n{}",
            shown.stdout
        );
    }
    let bad = run_wsloop(&["serve", "--check", "--max-frame", "lots"], &[]);
    refused_with(&bad, &["--max-frame", "not a size like 32, 16KiB or 1MiB"]);
    let help = run_wsloop(&["serve", "--help"], &[]);
    for flag in [
        "[default: 16MiB]",
        "[default: 8KiB]",
        "--hub-max-frame",
        "--max-rooms-per-connection",
        "--check",
    ] {
        assert!(
            help.stdout.contains(flag),
            "serve --help lacks {flag}:\n{}",
            help.stdout
        );
    }
}

#[test]
fn errors_name_the_expected_form() {
    let file = TempFile::new("toml", "[server]\nmax_connections = \"lots\"\n");
    let lots = run_wsloop(&["serve", "--check", "--config", file.as_str()], &[]);
    refused_with(&lots, &["max_connections", "expected a whole number"]);
    let typo = run_wsloop(&["serve", "--check"], &[("WSLOOP_SERVER_LISEN", "x")]);
    refused_with(
        &typo,
        &["WSLOOP_SERVER_LISEN", "did you mean WSLOOP_SERVER_LISTEN?"],
    );
    let none = run_wsloop(
        &["token", "--user", "a", "--secret", "s", "--alg", "none"],
        &[],
    );
    refused_with(&none, &["--alg", "use HS256, RS256, ES256 or EdDSA"]);
    let empty = run_wsloop(&["token", "--user", "", "--secret", "s"], &[]);
    refused_with(&empty, &["--user ``", "1-64 printable ASCII"]);
    assert!(empty.stdout.is_empty(), "no token minted: {}", empty.stdout);
    let path = run_wsloop(
        &[
            "publish",
            "--url",
            "http://127.0.0.1:1/api/publish",
            "--key",
            "k",
            "x",
        ],
        &[],
    );
    refused_with(&path, &["give the server's base URL"]);
}

#[test]
fn short_flags_mean_one_thing_and_each_bench_mode_shows_its_defaults() {
    let serve = run_wsloop(&["serve", "--help"], &[]).stdout;
    assert!(
        !serve.contains("-c, --config"),
        "serve -c would clash with bench -c:\n{serve}"
    );
    for (mode, url, connections) in [
        ("echo", "ws://127.0.0.1:8080/echo", "-c, --connections"),
        ("fanout", "ws://127.0.0.1:8080/ws", "-c, --subscribers"),
        ("connect", "ws://127.0.0.1:8080/echo", "-c, --concurrency"),
        ("idle", "ws://127.0.0.1:8080/echo", "-c, --connections"),
    ] {
        let help = run_wsloop(&["bench", mode, "--help"], &[]).stdout;
        assert!(
            help.contains(&format!("[default: {url}]")),
            "{mode}:\n{help}"
        );
        assert!(help.contains(connections), "{mode}:\n{help}");
        let n = help.lines().find(|l| l.trim_start().starts_with("-n,"));
        assert!(
            n.is_none_or(|l| l.contains("--messages")),
            "{mode}: -n is --messages only:\n{help}"
        );
    }
}

#[test]
fn the_startup_log_says_what_to_open_and_which_features_are_on() {
    let served = Served::start(&["--compression", "on"], &[]);
    let log = served.log();
    let addr = served.addr;
    for line in [
        format!("chat page: http://{addr}/"),
        format!("hub: ws://{addr}/ws"),
        format!("echo: ws://{addr}/echo"),
        "auth: none, compression: on, cluster: off, history: memory, publish API: off".into(),
    ] {
        assert!(log.contains(&line), "log lacks `{line}`:\n{log}");
    }
}
