//! `server.internal_listen`: with a second address set, `/metrics`, `/stats` and the
//! publish API move there (the public port answers them 404), the internal port serves no
//! WebSocket and no page, and both answer the health probes. Against the real binary.

mod common;

use std::net::{SocketAddr, TcpListener};

use common::Request;
use common::api::post;
use common::guard::{Served, expect_welcome, open_with, read_json, request_at, run_wsloop};

const KEY: &str = "internal-port-key";

fn free_addr() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    probe.local_addr().expect("local addr")
}

#[test]
fn operator_endpoints_live_on_the_internal_port_only() {
    let internal = free_addr();
    let internal_arg = internal.to_string();
    let served = Served::start(&["--internal-listen", &internal_arg, "--api-key", KEY], &[]);
    assert!(
        served
            .log()
            .contains(&format!("internal port: http://{internal}/metrics")),
        "{}",
        served.log()
    );
    let public = served.addr;

    for target in ["/metrics", "/stats"] {
        assert_eq!(
            request_at(public, &Request::get(target)).status,
            404,
            "public {target}"
        );
        assert_eq!(
            request_at(internal, &Request::get(target)).status,
            200,
            "internal {target}"
        );
    }
    let body = r#"{"room":"ops","payload":"from the backend"}"#;
    assert_eq!(post(public, Some(KEY), body).status, 404, "public API");
    for target in ["/healthz", "/readyz"] {
        assert_eq!(
            request_at(public, &Request::get(target)).status,
            200,
            "public {target}"
        );
        assert_eq!(
            request_at(internal, &Request::get(target)).status,
            200,
            "internal {target}"
        );
    }
    for target in ["/", "/ws?user_id=x", "/echo"] {
        let answer = request_at(internal, &Request::upgrade(target));
        assert_eq!(answer.status, 404, "internal {target}");
    }

    // Clients on the public port, the backend on the internal one.
    let mut client = open_with(public, "/ws?user_id=member", &[]);
    assert_eq!(expect_welcome(&mut client), "member");
    client.send_text(r#"{"type":"join","room":"ops"}"#);
    assert_eq!(read_json(&mut client)["type"], "joined");
    let answer = post(internal, Some(KEY), body);
    assert_eq!(answer.status, 200, "{answer:?}");
    let delivered = read_json(&mut client);
    assert_eq!(delivered["payload"], "from the backend", "{delivered}");
}

#[test]
fn without_it_everything_is_on_the_public_port_and_bad_values_are_named() {
    let served = Served::start(&[], &[]);
    assert_eq!(
        request_at(served.addr, &Request::get("/metrics")).status,
        200
    );
    assert!(
        served.log().contains("set server.internal_listen"),
        "{}",
        served.log()
    );

    let bad = run_wsloop(&["serve", "--check", "--internal-listen", "9090"], &[]);
    assert!(!bad.status.is_some_and(|s| s.success()), "{bad:?}");
    assert!(
        bad.stderr.contains("server.internal_listen")
            && bad.stderr.contains("expected IP:PORT, e.g. 127.0.0.1:9090"),
        "{bad:?}"
    );
    let same = run_wsloop(
        &[
            "serve",
            "--check",
            "--listen",
            "127.0.0.1:9191",
            "--internal-listen",
            "127.0.0.1:9191",
        ],
        &[],
    );
    assert!(
        same.stderr.contains("must differ from server.listen"),
        "{same:?}"
    );
}
