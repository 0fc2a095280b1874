//! Configuration of the real `wsloop serve` binary: a TOML file, overridden by `WSLOOP_*`
//! variables, overridden by flags. An unknown key, an unknown variable or a bad value stops
//! startup with a non-zero exit and a message naming it; `--print-config` shows the
//! effective result with `auth.secret` hidden.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::guard::{Finished, TempFile, fixture_path, run_wsloop, run_wsloop_within};

/// How long a `wsloop serve` that should refuse to start may run before the test gives up.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// `wsloop serve ARGS` with `env` (on port 0, in case it wrongly starts, unless the args or
/// `config_sets_listen` choose the address).
fn serve_with(args: &[&str], env: &[(&str, &str)], config_sets_listen: bool) -> Finished {
    let mut full = vec!["serve"];
    if !config_sets_listen && !args.contains(&"--listen") {
        full.extend_from_slice(&["--listen", "127.0.0.1:0"]);
    }
    full.extend_from_slice(args);
    run_wsloop_within(&full, env, REFUSAL_TIMEOUT)
}

/// `serve_with` for arguments and variables that do not set the address.
fn serve(args: &[&str], env: &[(&str, &str)]) -> Finished {
    serve_with(args, env, false)
}

/// Asserts that startup failed with a message that names `name`.
fn assert_refused(finished: &Finished, name: &str, what: &str) {
    let Some(status) = finished.status else {
        panic!(
            "{what}: still running after {REFUSAL_TIMEOUT:?}:\n{}",
            finished.stderr
        );
    };
    assert!(
        !status.success(),
        "{what}: exit status {status:?}; stderr:\n{}",
        finished.stderr
    );
    assert!(
        finished.stderr.starts_with("wsloop: ") && finished.stderr.contains(name),
        "{what}: the message should name `{name}`; stderr:\n{}",
        finished.stderr
    );
    assert!(
        !finished.stderr.contains("listening on"),
        "{what}: started anyway:\n{}",
        finished.stderr
    );
}

#[test]
fn unknown_keys_in_the_config_file_stop_startup_naming_them() {
    for (toml, name) in [
        ("[server]\nlisen = \"127.0.0.1:0\"\n", "lisen"),
        ("[auth]\nsecert = \"s\"\n", "secert"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        ("top_level = true\n", "top_level"),
    ] {
        let file = TempFile::new("toml", toml);
        assert_refused(&serve(&["--config", file.as_str()], &[]), name, toml);
    }
}

#[test]
fn unknown_wsloop_variables_stop_startup_naming_them() {
    for name in [
        "WSLOOP_SERVER_LISEN",
        "WSLOOP_AUTH_SECERT",
        "WSLOOP_NONSENSE",
        "WSLOOP_LISTEN",
    ] {
        assert_refused(&serve(&[], &[(name, "x")]), name, name);
    }
}

#[test]
fn bad_values_in_the_file_stop_startup_naming_the_key() {
    for (toml, name) in [
        ("[server]\nmax_connections = \"many\"\n", "max_connections"),
        ("[server]\nmax_connections = -1\n", "max_connections"),
        ("[hub]\nping_interval = \"soon\"\n", "ping_interval"),
        ("[rate_limit]\nenabled = \"sometimes\"\n", "enabled"),
        ("[auth]\nmode = \"magic\"\n", "mode"),
        ("[origin]\nallowed = \"https://a.example\"\n", "allowed"),
        ("[server]\nlisten = \"nowhere\"\n", "server.listen"),
        ("[server]\nmax_connections = 0\n", "server.max_connections"),
        ("[server\n", "expected"),
    ] {
        let file = TempFile::new("toml", toml);
        let finished = serve_with(&["--config", file.as_str()], &[], toml.contains("listen"));
        assert_refused(&finished, name, toml);
    }
    let missing = serve(&["--config", "/nonexistent/wsloop.toml"], &[]);
    assert_refused(&missing, "/nonexistent/wsloop.toml", "missing file");
}

#[test]
fn bad_values_in_the_environment_stop_startup_naming_the_variable() {
    for (name, value) in [
        ("WSLOOP_SERVER_MAX_CONNECTIONS", "lots"),
        ("WSLOOP_SERVER_DRAIN_TIMEOUT", "soon"),
        ("WSLOOP_RATE_LIMIT_ENABLED", "maybe"),
        ("WSLOOP_RATE_LIMIT_CAPACITY", "ten"),
        ("WSLOOP_AUTH_MODE", "magic"),
    ] {
        let finished = serve(&[], &[(name, value)]);
        assert_refused(&finished, name, &format!("{name}={value}"));
    }
}

#[test]
fn bad_flag_values_stop_startup_naming_the_flag_or_key() {
    let es256_public = fixture_path("es256-public.pem");
    let not_an_rsa_key = es256_public.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--max-connections", "lots"], "--max-connections"),
        (&["--drain-timeout", "soon"], "--drain-timeout"),
        (
            &["--handshake-timeout", "10 parsecs"],
            "--handshake-timeout",
        ),
        (&["--rate-limit", "maybe"], "--rate-limit"),
        (&["--auth", "magic"], "--auth"),
        (&["--listen", "nowhere"], "server.listen"),
        (&["--max-connections", "0"], "server.max_connections"),
        (&["--auth", "jwt"], "auth.secret"),
        (
            &["--auth", "jwt", "--jwt-alg", "RS256"],
            "auth.public_key_file",
        ),
        (
            &[
                "--auth",
                "jwt",
                "--jwt-alg",
                "RS256",
                "--jwt-public-key",
                "/nonexistent.pem",
            ],
            "auth.public_key_file",
        ),
        (
            &[
                "--auth",
                "jwt",
                "--jwt-alg",
                "RS256",
                "--jwt-public-key",
                not_an_rsa_key,
            ],
            "auth.alg",
        ),
        (&["--allowed-origin", "example.com"], "origin.allowed"),
    ];
    for (args, name) in cases {
        assert_refused(&serve(args, &[]), name, &format!("{args:?}"));
    }
}

// An unsupported algorithm is a bad `auth.alg`, whatever else is set: the message must
// name that key (not send the operator looking for a public key file an HS256 setup does
// not need).
#[test]
fn unsupported_jwt_alg_is_named_as_the_bad_key() {
    for alg in ["HS999", "none", "hs256"] {
        let finished = serve(
            &["--auth", "jwt", "--jwt-alg", alg, "--jwt-secret", "s"],
            &[],
        );
        assert_refused(&finished, "auth.alg", &format!("--jwt-alg {alg}"));
    }
}

// `log.level` takes error, warn, info, debug or trace; anything else is a bad value, which
// must stop startup like the others instead of being handed to the logger as a filter.
#[test]
fn bad_log_level_stops_startup_naming_the_key() {
    for level in ["loud", "verbose"] {
        let finished = serve(&["--log-level", level], &[]);
        assert_refused(&finished, "log", &format!("--log-level {level}"));
        let finished = serve(&[], &[("WSLOOP_LOG_LEVEL", level)]);
        assert_refused(
            &finished,
            "WSLOOP_LOG_LEVEL",
            &format!("WSLOOP_LOG_LEVEL={level}"),
        );
    }
}

/// `--print-config` output as `section.key` → value text (arrays joined onto one line).
fn parse_printed(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut section = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once(" = ") {
            let mut value = value.to_owned();
            if value.starts_with('[') && !value.ends_with(']') {
                for more in lines.by_ref() {
                    value.push_str(more.trim());
                    if more.trim() == "]" {
                        break;
                    }
                }
            }
            values.insert(format!("{section}.{key}"), value);
        }
    }
    values
}

#[test]
fn print_config_shows_file_then_env_then_flags_and_hides_the_secret() {
    let file = TempFile::new(
        "toml",
        "[server]\nlisten = \"127.0.0.1:1001\"\nmax_connections = 11\n\
         max_connections_per_ip = 12\ndrain_timeout = \"3s\"\n\
         [auth]\nsecret = \"file-secret-aaaa\"\n\
         [origin]\nallowed = [\"https://file.example\"]\n[log]\nlevel = \"warn\"\n",
    );
    let env = [
        ("WSLOOP_SERVER_LISTEN", "127.0.0.1:1002"),
        ("WSLOOP_SERVER_MAX_CONNECTIONS", "22"),
        ("WSLOOP_AUTH_SECRET", "env-secret-bbbb"),
        (
            "WSLOOP_ORIGIN_ALLOWED",
            "https://env.example, https://*.env.example",
        ),
        ("WSLOOP_HUB_PING_INTERVAL", "30s"),
    ];
    let args = [
        "serve",
        "--config",
        file.as_str(),
        "--listen",
        "127.0.0.1:1003",
        "--jwt-secret",
        "flag-secret-cccc",
        "--print-config",
    ];
    let printed = run_wsloop(&args, &env);
    printed.assert_success();
    let out = &printed.stdout;
    let values = parse_printed(out);
    let expect = [
        ("server.listen", "\"127.0.0.1:1003\""), // flag > env > file
        ("server.max_connections", "22"),        // env > file
        ("server.max_connections_per_ip", "12"), // file > default
        ("server.drain_timeout", "\"3s\""),      // file
        ("server.max_connections_per_user", "32"), // default
        ("hub.ping_interval", "\"30s\""),        // env > default
        ("log.level", "\"warn\""),               // file
        ("auth.secret", "\"***\""),              // hidden, whichever layer set it
    ];
    for (key, value) in expect {
        assert_eq!(
            values.get(key).map(String::as_str),
            Some(value),
            "{key} in:\n{out}"
        );
    }
    let allowed = &values["origin.allowed"];
    assert!(
        allowed.contains("\"https://env.example\"")
            && allowed.contains("\"https://*.env.example\"")
            && !allowed.contains("file.example"),
        "origin.allowed from the environment replaces the file's: {allowed}"
    );
    for secret in ["file-secret-aaaa", "env-secret-bbbb", "flag-secret-cccc"] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
        assert!(!printed.stderr.contains(secret), "{secret} on stderr");
    }

    // Repeated flags replace a list from the environment as a whole.
    let with_flags = run_wsloop(
        &[
            "serve",
            "--allowed-origin",
            "https://flag.example",
            "--allowed-origin",
            "https://*.flag.example",
            "--print-config",
        ],
        &env,
    );
    with_flags.assert_success();
    let allowed = &parse_printed(&with_flags.stdout)["origin.allowed"];
    assert_eq!(
        allowed,
        "[\"https://flag.example\",\"https://*.flag.example\",]"
    );

    // What it prints is itself a valid config file that prints the same.
    let again = TempFile::new("toml", out);
    let reprinted = run_wsloop(
        &["serve", "--config", again.as_str(), "--print-config"],
        &[],
    );
    reprinted.assert_success();
    assert_eq!(&reprinted.stdout, out);
}

#[test]
fn print_config_without_layers_shows_the_defaults() {
    let printed = run_wsloop(&["serve", "--print-config"], &[]);
    printed.assert_success();
    let values = parse_printed(&printed.stdout);
    for (key, value) in [
        ("server.listen", "\"127.0.0.1:8080\""),
        ("server.max_connections", "10000"),
        ("server.drain_timeout", "\"10s\""),
        ("rate_limit.capacity", "10.0"),
        ("rate_limit.refill_per_sec", "1.0"),
        ("auth.mode", "\"none\""),
        ("origin.allow_missing", "true"),
    ] {
        assert_eq!(
            values.get(key).map(String::as_str),
            Some(value),
            "{key}:\n{}",
            printed.stdout
        );
    }
}
