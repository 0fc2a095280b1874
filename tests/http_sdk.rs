//! The JavaScript client SDK is served by the binary at `GET /wsloop.js` (and `HEAD`), as an
//! ES module the chat page imports: the right status and content type, and the body is
//! `clients/js/wsloop.js` byte for byte.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::Request;
use common::guard::Served;

/// The file the binary compiles in.
const SDK: &str = include_str!("../clients/js/wsloop.js");

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
fn get_wsloop_js_serves_the_sdk_as_javascript() {
    let served = Served::start(&[], &[]);
    let get = raw(served.addr, &Request::get("/wsloop.js"));
    assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{get}");
    assert_eq!(
        header(&get, "Content-Type"),
        Some("text/javascript; charset=utf-8"),
        "{get}"
    );
    let (_, body) = get.split_once("\r\n\r\n").expect("a head and a body");
    assert_eq!(body, SDK, "the body is clients/js/wsloop.js");
    let length = SDK.len().to_string();
    assert_eq!(header(&get, "Content-Length"), Some(length.as_str()));

    let head = raw(served.addr, &Request::get("/wsloop.js").method("HEAD"));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body:\n{head}");
    assert_eq!(header(&head, "Content-Length"), Some(length.as_str()));
}

#[test]
fn the_sdk_is_public_not_internal() {
    // A port nothing listens on yet: bound, then closed, then given to the server.
    let internal = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let served = Served::start(&["--internal-listen", &internal.to_string()], &[]);
    let public = raw(served.addr, &Request::get("/wsloop.js"));
    assert!(public.starts_with("HTTP/1.1 200"), "public port:\n{public}");
    let private = raw(internal, &Request::get("/wsloop.js"));
    assert!(
        private.starts_with("HTTP/1.1 404"),
        "internal port:\n{private}"
    );
}
