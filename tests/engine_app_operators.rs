//! An app's routes for operators ([`ServerBuilder::for_operators`]): with
//! `server.internal_listen` set, served on the internal listener only, beside `/metrics`
//! (404 on the public one), while the app's WebSocket stays public (and is not served on
//! the internal one); without it, on the one listener.
//!
//! The fault: an admin API reachable by the public. Without the mark, `GET
//! /game-admin/kick` on the public port reached the app.

mod common;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use common::Request as HttpGet;
use common::guard::request_at;
use wsloop::client::{Client, ClientOptions, Message as Received};
use wsloop::server::{
    App, ConnId, Ctx, HttpReply, HttpRequest, Message, Response, Server, ServerConfig,
};

/// Echoes on its WebSocket; answers its admin API with the path.
struct Game;

impl App for Game {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, message: Message<'_>) {
        ctx.send(conn, message);
    }

    fn on_http(&mut self, _: &mut Ctx<'_>, request: &HttpRequest<'_>) -> HttpReply {
        HttpReply::Respond(Response::text(200, &format!("admin {}", request.path())))
    }
}

/// The public and (when `split`) internal addresses of a loop serving [`Game`].
fn start(split: bool) -> (SocketAddr, Option<SocketAddr>) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = ServerConfig {
            listen: loopback,
            internal_listen: split.then_some(loopback),
            ..ServerConfig::default()
        };
        let mut server = Server::builder(config)
            .route_paths(&["/game", "/game-admin/*", "/game-admin"], Game)
            .for_operators("/game-admin/*")
            .for_operators("/game-admin")
            .bind()
            .expect("bind");
        tx.send((server.local_addr(), server.internal_addr()))
            .expect("send the addresses");
        server.run().expect("run");
    });
    rx.recv().expect("the server's addresses")
}

/// A plain GET: the status and the body.
fn get(addr: SocketAddr, target: &str) -> (u16, String) {
    let response = request_at(addr, &HttpGet::get(target));
    let body = String::from_utf8_lossy(&response.body)
        .trim_end()
        .to_owned();
    (response.status, body)
}

fn echoes(addr: SocketAddr) -> bool {
    let Ok(mut client) = Client::connect(&format!("ws://{addr}/game"), &ClientOptions::default())
    else {
        return false;
    };
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client.send_text("hi").expect("send");
    client.recv().expect("echo") == Received::Text("hi".into())
}

#[test]
fn operator_routes_move_to_the_internal_listener() {
    let (public, internal) = start(true);
    let internal = internal.expect("an internal listener");
    for path in ["/game-admin/kick", "/game-admin"] {
        assert_eq!(get(public, path).0, 404, "{path}");
        assert_eq!(get(internal, path), (200, format!("admin {path}")));
    }
    assert!(echoes(public), "the WebSocket stays public");
    assert!(!echoes(internal), "and is not served to operators");
    assert_eq!(get(internal, "/metrics").0, 200);
}

#[test]
fn with_one_listener_operator_routes_are_on_it() {
    let (public, internal) = start(false);
    assert_eq!(internal, None);
    assert_eq!(
        get(public, "/game-admin/kick"),
        (200, "admin /game-admin/kick".to_owned())
    );
    assert!(echoes(public));
}
