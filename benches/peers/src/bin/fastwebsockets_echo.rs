//! A fastwebsockets echo server on a tokio current-thread runtime, the shape of
//! fastwebsockets' own `examples/echo_server.rs`: hyper answers the upgrade, then each
//! connection is a task reading frames and writing text and binary ones back. Pings and
//! closes are answered by fastwebsockets itself (auto-pong, auto-close).
//!
//! Usage: `fastwebsockets-echo [ADDR]` (default `127.0.0.1:9001`); any path is accepted.

use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::net::TcpStream;

fn main() -> std::io::Result<()> {
    wsloop_peers::serve("fastwebsockets-echo", || serve)
}

async fn serve(stream: TcpStream) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let connection = http1::Builder::new()
        .serve_connection(io, service_fn(upgrade_request))
        .with_upgrades();
    let _ = connection.await;
}

async fn upgrade_request(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, upgraded) = upgrade::upgrade(&mut request)?;
    tokio::spawn(async move {
        let _ = tokio::task::unconstrained(echo(upgraded)).await;
    });
    Ok(response)
}

async fn echo(upgraded: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(upgraded.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
