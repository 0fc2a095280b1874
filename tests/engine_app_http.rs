//! Plain HTTP for an app's paths (`App::on_http`), from the outside: what the app sees of
//! the request (method, path, query, headers, the whole body even when it arrives in
//! pieces), its answer (and only the head of it for `HEAD`), a publish endpoint reaching
//! the app's WebSocket subscribers, an answer given later (and the 504 when it does not
//! come in time), a head the app refuses before its body is read (`App::on_http_head`),
//! the refusals the engine makes before the app is asked (chunked bodies,
//! bodies over `api.max_body_bytes`), the 426 an app without `on_http` keeps giving, and a
//! panic in `on_http` answered 500 while the server goes on.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::TestServer;
use wsloop::client::{Client, Message as Received};
use wsloop::server::{
    App, ConnId, Ctx, HttpHead, HttpReply, HttpRequest, HttpTicket, Message, Request, Response,
};

/// The largest body the test server takes.
const MAX_BODY: usize = 4096;

/// How long a request may wait for its answer (the server's handshake timeout).
const ANSWER_WITHIN: Duration = Duration::from_millis(1500);

/// `/api/*` answers HTTP; WebSocket connections anywhere subscribe to `news`, and a
/// WebSocket `answer` answers the requests waiting at `/api/ask`.
#[derive(Default)]
struct Newsroom {
    asked: Vec<HttpTicket>,
}

impl App for Newsroom {
    /// `/api/guarded` takes only requests with the key, and never reads another's body.
    fn on_http_head(&mut self, _: &mut Ctx<'_>, request: &HttpHead<'_>) -> Result<(), Response> {
        if request.path() != "/api/guarded" || request.header("x-key") == Some("k") {
            Ok(())
        } else {
            Err(Response::text(401, "no key, no body"))
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _: &Request<'_>) {
        ctx.subscribe(conn, "news");
        ctx.send(conn, Message::Text("subscribed"));
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        if message == Message::Text("answer") {
            for ticket in std::mem::take(&mut self.asked) {
                let answered = ctx.respond(ticket, Response::text(200, "answered later"));
                ctx.send(conn, Message::Text(&format!("answered {answered}")));
            }
        }
    }

    fn on_http(&mut self, ctx: &mut Ctx<'_>, request: &HttpRequest<'_>) -> HttpReply {
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/api/echo") => {
                let seen = format!(
                    "{} {} q={} who={} agent={} body={}",
                    request.method(),
                    request.path(),
                    request.query().unwrap_or("-"),
                    request.query_param("who").unwrap_or_default(),
                    request.header("user-agent").unwrap_or("-"),
                    request.body().len(),
                );
                HttpReply::Respond(Response::text(200, &seen).header("X-Seen-By", "newsroom"))
            }
            ("POST", "/api/publish") => {
                let delivered = ctx.publish("news", Message::Binary(request.body()));
                HttpReply::Respond(Response::with_body(
                    202,
                    "application/json",
                    format!(r#"{{"delivered":{delivered}}}"#).into_bytes(),
                ))
            }
            ("POST", "/api/ask") => {
                self.asked.push(request.ticket());
                ctx.publish("news", Message::Text("asked"));
                HttpReply::Later
            }
            ("GET", "/api/panic") => panic!("on_http panics (test)"),
            ("POST", "/api/guarded") => {
                let seen = format!("guarded body={}", request.body().len());
                HttpReply::Respond(Response::text(200, &seen))
            }
            (_, "/api/only-ws") => HttpReply::Decline,
            _ => HttpReply::Respond(Response::text(404, "no such endpoint")),
        }
    }
}

/// A loop with [`Newsroom`] on every path under `/`.
fn start() -> TestServer {
    TestServer::start_apps(
        |config| {
            config.handshake_timeout = ANSWER_WITHIN;
            config.api.max_body_bytes = MAX_BODY;
        },
        |routes| routes.route("/*", Newsroom::default()),
    )
}

/// Sends `parts` with a pause between them; returns the whole answer (to EOF).
fn exchange(addr: SocketAddr, parts: &[&[u8]]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        stream.write_all(part).expect("write");
    }
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read to EOF");
    answer
}

fn request(addr: SocketAddr, text: &str) -> String {
    exchange(addr, &[text.as_bytes()])
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

fn subscriber(server: &TestServer) -> Client {
    let mut client = server.ws("/live");
    assert_eq!(
        client.recv().expect("hello"),
        Received::Text("subscribed".into())
    );
    client
}

#[test]
fn an_app_answers_plain_http_and_its_subscribers_hear_a_post() {
    let server = start();
    let addr = server.addr;
    let answer = request(
        addr,
        "GET /api/echo?who=ann&x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("X-Seen-By: newsroom\r\n"), "{answer}");
    assert_eq!(
        body_of(&answer),
        "GET /api/echo q=who=ann&x=1 who=ann agent=probe/1 body=0\n"
    );

    // HEAD: the same head, no body.
    let answer = request(addr, "HEAD /api/echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("Content-Length: "), "{answer}");
    assert_eq!(body_of(&answer), "");

    // A body in three pieces, published to two WebSocket subscribers.
    let (mut a, mut b) = (subscriber(&server), subscriber(&server));
    let body = vec![7u8; 3000];
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let answer = exchange(addr, &[head.as_bytes(), &body[..1000], &body[1000..]]);
    assert!(answer.starts_with("HTTP/1.1 202 "), "{answer}");
    assert_eq!(body_of(&answer), r#"{"delivered":2}"#);
    for client in [&mut a, &mut b] {
        assert_eq!(client.recv().expect("news"), Received::Binary(body.clone()));
    }

    let answer = request(addr, "GET /api/nothing HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
}

#[test]
fn an_answer_given_later_and_one_that_never_comes() {
    let server = start();
    let addr = server.addr;
    let mut live = subscriber(&server);
    let ask = "POST /api/ask HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n?";
    let waiting = std::thread::spawn(move || request(addr, ask));
    assert_eq!(live.recv().expect("asked"), Received::Text("asked".into()));
    live.send_text("answer").expect("answer");
    assert_eq!(
        live.recv().expect("told"),
        Received::Text("answered true".into())
    );
    let answer = waiting.join().expect("the asking thread");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(body_of(&answer), "answered later\n");

    // Never answered: 504 at the deadline, and a late answer is refused.
    let started = std::time::Instant::now();
    let answer = request(addr, ask);
    assert!(answer.starts_with("HTTP/1.1 504 "), "{answer}");
    assert!(
        started.elapsed() < ANSWER_WITHIN * 4,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(live.recv().expect("asked"), Received::Text("asked".into()));
    live.send_text("answer").expect("answer");
    assert_eq!(
        live.recv().expect("told"),
        Received::Text("answered false".into())
    );
}

#[test]
fn the_engine_refuses_what_the_app_is_never_asked() {
    let server = start();
    let addr = server.addr;
    let too_big = format!(
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    let answer = request(addr, &too_big);
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");

    let chunked =
        "POST /api/publish HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(request(addr, chunked).starts_with("HTTP/1.1 411 "));

    let bad = "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n";
    assert!(request(addr, bad).starts_with("HTTP/1.1 400 "));

    // Declining (`None`) answers as a WebSocket path does without an upgrade.
    let answer = request(addr, "GET /api/only-ws HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Upgrade: websocket\r\n"), "{answer}");

    // A WebSocket handshake on the same paths is still a WebSocket.
    let mut live = subscriber(&server);

    // A panic in on_http is this request's 500, and nobody else's problem.
    let answer = request(addr, "GET /api/panic HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
    let answer = request(addr, "GET /api/echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let post = "POST /api/publish HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi";
    assert!(request(addr, post).starts_with("HTTP/1.1 202 "));
    assert_eq!(live.recv().expect("news"), Received::Binary(b"hi".to_vec()));
}

#[test]
fn the_app_refuses_a_head_before_its_body_is_read() {
    let server = start();
    let addr = server.addr;
    // Without the key: 401 at once, before `100 Continue` and before the body, and before
    // the engine's own check of the length.
    for length in [1000, MAX_BODY + 1] {
        let head = format!(
            "POST /api/guarded HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\
             Content-Length: {length}\r\n\r\n"
        );
        let answer = exchange(addr, &[head.as_bytes()]);
        assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
        assert!(!answer.contains("100 Continue"), "{answer}");
        assert!(answer.trim_end().ends_with("no key, no body"), "{answer}");
    }
    // With it: `100 Continue`, then the body is read and the app answers.
    let head = "POST /api/guarded HTTP/1.1\r\nHost: t\r\nX-Key: k\r\n\
                Expect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    let answer = exchange(addr, &[head.as_bytes(), b"hello"]);
    assert!(
        answer.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "),
        "{answer}"
    );
    assert!(answer.trim_end().ends_with("guarded body=5"), "{answer}");
    // Other paths pass the head through.
    let answer = request(addr, "GET /api/echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

#[test]
fn a_route_without_on_http_keeps_the_426() {
    struct Quiet;
    impl App for Quiet {
        fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}
    }
    let server = TestServer::start_apps(|_| {}, |routes| routes.route("/quiet", Quiet));
    let addr = server.addr;
    let answer = request(addr, "GET /quiet HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    let answer = request(
        addr,
        "POST /quiet HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
}
