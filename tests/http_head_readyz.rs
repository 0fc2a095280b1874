//! Plain HTTP as load balancers use it, against the real binary: `HEAD` answers like `GET`
//! without the body, and a clustered node that has never reached Redis is not ready (503),
//! so no client is sent to a node that cannot reach the cluster.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::Request;
use common::guard::Served;

/// Sends `request` and reads the whole answer (the server closes after it).
fn raw(addr: SocketAddr, request: &Request) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(&request.to_bytes()).expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read to EOF");
    String::from_utf8(answer).expect("UTF-8 answer")
}

/// The value of header `name` in a raw answer.
fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn head_answers_like_get_without_a_body() {
    let served = Served::start(&[], &[]);
    for path in ["/", "/healthz", "/readyz", "/stats", "/metrics"] {
        let get = raw(served.addr, &Request::get(path));
        let head = raw(served.addr, &Request::get(path).method("HEAD"));
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n"),
            "HEAD {path}:\n{head}"
        );
        assert!(
            head.ends_with("\r\n\r\n"),
            "HEAD {path} has no body:\n{head}"
        );
        let (get_type, head_type) = (header(&get, "Content-Type"), header(&head, "Content-Type"));
        assert_eq!(get_type, head_type, "{path}");
        if path != "/stats" && path != "/metrics" {
            // Their figures move between two requests; the others are fixed.
            let length = header(&get, "Content-Length");
            assert_eq!(length, header(&head, "Content-Length"), "{path}");
        }
    }
    let post = raw(served.addr, &Request::get("/healthz").method("POST"));
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert_eq!(header(&post, "Allow"), Some("GET, HEAD"), "{post}");
}

#[test]
fn a_node_that_never_reached_redis_is_not_ready() {
    // A port nothing listens on: bound, then closed.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let served = Served::start(&["--redis-url", &url], &[]);
    let ready = raw(served.addr, &Request::get("/readyz"));
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(
        ready.contains("not ready: redis not reached yet"),
        "{ready}"
    );
    assert!(header(&ready, "Retry-After").is_some(), "{ready}");
    // Still alive, and serving: /healthz is 200.
    let health = raw(served.addr, &Request::get("/healthz"));
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
