//! `wsloop bench --json` from the real binary: its stdout is the JSON report, nothing else.
//!
//! The load generator itself (every mode against a real server, refusals, rejections) is
//! tested inside the binary crate, in `src/bench/tests.rs`; it is not part of the library.

mod common;

use std::process::Command;

use common::TestServer;
use serde_json::Value;

#[test]
fn the_binary_prints_json() {
    // The configuration the load generator's own tests use (src/bench/tests.rs).
    let server = TestServer::start_with(|config| {
        config.max_connections_per_user = 0;
        config.hub.rate_limit_enabled = false;
    });
    let output = Command::new(env!("CARGO_BIN_EXE_wsloop"))
        .args(["bench", "echo", &format!("ws://{}/echo", server.addr)])
        .args(["-c", "2", "-d", "2", "-t", "200ms", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let r: Value = serde_json::from_slice(&output.stdout).expect("stdout is the JSON report");
    assert_eq!(r["mode"], "echo");
    assert_eq!(r["connections"], 2);
    assert!(r["messages"].as_u64().unwrap() > 0);
}
